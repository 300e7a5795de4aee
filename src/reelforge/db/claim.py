"""The job claim (the one dialect-specific statement in Reelforge) and writes under its lease.

One statement takes a lease on the due videos and bumps each one's fencing token:
PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, so workers never wait on each other;
SQLite runs the same UPDATE inside `BEGIN IMMEDIATE`, which takes the single write lock
before reading, so two claimers are serialised and can't both pick a row (DESIGN.md §1, §4).
Every later write of the holder names the token, and changes nothing once it is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.clock import utcnow


@dataclass(frozen=True)
class Claim:
    """A lease on one video: writes under it must name this `version`.

    `video` is the row as the claim left it (detached), so a step starts without reading it
    again; it is a snapshot, and only writes guarded by `version` may act on it.
    """

    video_id: str
    version: int
    owner: str
    until: datetime
    video: Video


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Video.next_check_at.is_not(None),
        Video.next_check_at <= now,
        or_(Video.lease_until.is_(None), Video.lease_until < now),
    )


async def claim_due(
    database: Database, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Claim]:
    """Lease up to `limit` videos whose next check is due and whose lease (if any) ran out."""
    if limit <= 0:
        return []
    until = now + lease
    due = select(Video.id).where(_due(now)).order_by(Video.next_check_at).limit(limit)
    if database.dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(Video)
        .where(Video.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=until, lease_version=Video.lease_version + 1)
        .returning(Video)
        .execution_options(synchronize_session=False)
    )
    async with database.session() as session:
        await _begin_for_claim(await session.connection(), database.dialect)
        videos = (await session.scalars(statement)).all()
        await session.commit()
    return [
        Claim(video_id=video.id, version=video.lease_version, owner=owner, until=until, video=video)
        for video in videos
    ]


async def _begin_for_claim(connection: AsyncConnection, dialect: str) -> None:
    # The SQLite driver would open a deferred transaction; a claim must hold the write lock
    # from its first read. PostgreSQL's row locks already do that job.
    if dialect == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def extend(database: Database, claim: Claim, *, now: datetime, lease: timedelta) -> Claim:
    """Hold the lease longer (for long steps); raises LeaseLost when it is no longer ours.

    Also guarded by the owner: once a step's last write has given the lease back, a late
    heartbeat must not take it again.
    """
    until = now + lease
    async with database.session() as session, session.begin():
        result = await session.execute(
            update(Video)
            .where(
                Video.id == claim.video_id,
                Video.lease_version == claim.version,
                Video.lease_owner == claim.owner,
            )
            .values(lease_until=until)
        )
        if not getattr(result, "rowcount", 0):
            raise LeaseLost(claim.video_id)
    return replace(claim, until=until)


_LEASE_VERSION = select(Video.lease_version).where(Video.id == bindparam("video_id"))


async def ensure_held(database: Database, claim: Claim) -> None:
    """Raise LeaseLost unless the claim's fencing token is still the video's: a plain read, for
    a side effect outside the database that must not happen once someone else holds the video."""
    async with database.reading() as connection:
        version = await connection.scalar(_LEASE_VERSION, {"video_id": claim.video_id})
    if version != claim.version:
        raise LeaseLost(claim.video_id)


# Every write under a lease runs one of these statements, built once, with the new values as
# execution parameters: SQLAlchemy then sets the columns the parameters name. Building the
# statement anew per write, `.values(...)` included, cost about a fifth of the engine's CPU
# (py-spy). The fence's parameter names can't meet a column's.
_FENCE = (Video.id == bindparam("fence_id"), Video.lease_version == bindparam("fence_version"))
_FENCED = update(Video).where(*_FENCE).returning(Video)
# For writes that need nothing back: loading the whole row into an ORM object is work too.
_FENCED_ID = update(Video).where(*_FENCE).returning(Video.id)
# Parameters name columns, not attributes (`metadata`, not `metadata_`); an unknown one would be
# dropped without a word, so each is looked up here and a wrong name fails loudly.
_COLUMN_OF = {prop.key: prop.columns[0].key for prop in inspect(Video).column_attrs}


def _fence_parameters(claim: Claim, values: dict[str, Any]) -> dict[str, Any]:
    parameters = {_COLUMN_OF[name]: value for name, value in values.items()}
    parameters.update(updated_at=utcnow(), fence_id=claim.video_id, fence_version=claim.version)
    return parameters


async def guarded(session: AsyncSession, claim: Claim, **values: Any) -> Video:
    """Apply `values` (by attribute name) in the session's transaction only while the claim's
    fencing token is the video's, else raise LeaseLost; the video as written."""
    video: Video | None = await session.scalar(
        _FENCED, _fence_parameters(claim, values), execution_options={"populate_existing": True}
    )
    if video is None:
        raise LeaseLost(claim.video_id)
    return video


async def fenced(session: AsyncSession, claim: Claim, **values: Any) -> None:
    """`guarded`, for a write that needs nothing back."""
    if await session.scalar(_FENCED_ID, _fence_parameters(claim, values)) is None:
        raise LeaseLost(claim.video_id)


def released(next_check_at: datetime | None) -> dict[str, Any]:
    """The column values that give a lease back: merged into a step's last fenced write."""
    return {"lease_owner": None, "lease_until": None, "next_check_at": next_check_at}


async def release(database: Database, claim: Claim, *, next_check_at: datetime | None) -> bool:
    """Give the lease back and say when the video is next due; False if it wasn't ours."""
    async with database.session() as session, session.begin():
        result = await session.execute(
            update(Video)
            .where(Video.id == claim.video_id, Video.lease_version == claim.version)
            .values(**released(next_check_at))
        )
        return bool(getattr(result, "rowcount", 0))


class LeaseLost(Exception):
    """Someone else holds this video now (our lease ran out, or a user cancelled it)."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        super().__init__(f"lease on {video_id} lost")
