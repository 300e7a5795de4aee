"""The job claim: the one dialect-specific statement in Reelforge (DESIGN.md §1, §4).

One statement takes a lease on the due videos and bumps each one's fencing token:
PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, so workers never wait on each other;
SQLite runs the same UPDATE inside `BEGIN IMMEDIATE`, which takes the single write lock
before reading, so two claimers are serialised and can't both pick a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db.engine import Database
from reelforge.db.models import Video


@dataclass(frozen=True)
class Claim:
    """A lease on one video: writes under it must name this `version`."""

    video_id: str
    version: int
    owner: str
    until: datetime


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
        .returning(Video.id, Video.lease_version)
    )
    async with database.engine.connect() as connection:
        await _begin_for_claim(connection, database.dialect)
        rows = (await connection.execute(statement)).all()
        await connection.commit()
    return [Claim(video_id=row[0], version=row[1], owner=owner, until=until) for row in rows]


async def _begin_for_claim(connection: AsyncConnection, dialect: str) -> None:
    # The SQLite driver would open a deferred transaction; a claim must hold the write lock
    # from its first read. PostgreSQL's row locks already do that job.
    if dialect == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def extend(database: Database, claim: Claim, *, now: datetime, lease: timedelta) -> Claim:
    """Hold the lease longer (for long steps); raises LeaseLost when it is no longer ours."""
    until = now + lease
    async with database.session() as session, session.begin():
        result = await session.execute(
            update(Video)
            .where(Video.id == claim.video_id, Video.lease_version == claim.version)
            .values(lease_until=until)
        )
        if not getattr(result, "rowcount", 0):
            raise LeaseLost(claim.video_id)
    return Claim(claim.video_id, claim.version, claim.owner, until)


async def release(database: Database, claim: Claim, *, next_check_at: datetime | None) -> bool:
    """Give the lease back and say when the video is next due; False if it wasn't ours."""
    async with database.session() as session, session.begin():
        result = await session.execute(
            update(Video)
            .where(Video.id == claim.video_id, Video.lease_version == claim.version)
            .values(lease_owner=None, lease_until=None, next_check_at=next_check_at)
        )
        return bool(getattr(result, "rowcount", 0))


class LeaseLost(Exception):
    """Someone else holds this video now (our lease ran out, or a user cancelled it)."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        super().__init__(f"lease on {video_id} lost")
