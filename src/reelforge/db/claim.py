"""The job claim (the one dialect-specific statement in Reelforge) and writes under its lease.

One statement takes a lease on the due videos and bumps each one's fencing token:
PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, so workers never wait on each other;
SQLite runs the same UPDATE inside `BEGIN IMMEDIATE`, which takes the single write lock
before reading, so two claimers are serialised and can't both pick a row (DESIGN.md §1, §4).
Every later write of the holder names the token, and changes nothing once it is stale.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Row,
    Table,
    Update,
    bindparam,
    case,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db.engine import Database
from reelforge.db.group import Batch
from reelforge.db.models import Video
from reelforge.db.videos import ledger_closed
from reelforge.domain.clock import utcnow


@dataclass(frozen=True)
class Claim:
    """A lease on one video: writes under it must name this `version`.

    `video` is the row as the claim left it, in a Video no session tracks, so a step starts
    without reading it again; it is a snapshot, and only writes guarded by `version` may act on
    it.
    """

    video_id: str
    version: int
    owner: str
    until: datetime
    video: Video


_VIDEOS = cast(Table, Video.__table__)


def _claim_statement(*, skip_locked: bool) -> Update:
    """Lease the due videos whose lease (if any) ran out, oldest check first; built once, like
    the fenced writes below (building it per claim cost about as much CPU as running it)."""
    videos = _VIDEOS.c
    due = (
        select(videos.id)
        .where(
            videos.next_check_at.is_not(None),
            videos.next_check_at <= bindparam("now"),
            or_(videos.lease_until.is_(None), videos.lease_until < bindparam("now")),
        )
        .order_by(videos.next_check_at)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    return (
        update(_VIDEOS)
        .where(videos.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=bindparam("owner"),
            lease_until=bindparam("until"),
            lease_version=videos.lease_version + 1,
        )
        .returning(*_VIDEOS.c)
    )


_CLAIM = _claim_statement(skip_locked=False)
# PostgreSQL: rows another claimer has locked are passed over, so workers never wait on each other.
_CLAIM_SKIPPING_LOCKED = _claim_statement(skip_locked=True)


async def claim_due(
    database: Database, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Claim]:
    """Lease up to `limit` videos whose next check is due and whose lease (if any) ran out."""
    if limit <= 0:
        return []
    until = now + lease
    statement = _CLAIM_SKIPPING_LOCKED if database.dialect == "postgresql" else _CLAIM
    parameters = {"now": now, "limit": limit, "owner": owner, "until": until}
    async with database.transaction() as connection:
        await _begin_for_claim(connection, database.dialect)
        rows = (await connection.execute(statement, parameters)).all()
    return [_claimed(row, owner, until) for row in rows]


def _claimed(row: Row[Any], owner: str, until: datetime) -> Claim:
    # The video as a transient Video, a snapshot no session tracks. Filled the way the ORM fills
    # a loaded object (a new instance, values into its __dict__): Video(**values) fires an
    # attribute event per column, 70 us a row against 2.5 us (timeit).
    mapping = row._mapping
    video = _VIDEO_MANAGER.new_instance()
    video.__dict__.update({name: mapping[column] for name, column in _COLUMN_OF.items()})
    return Claim(
        video_id=video.id, version=video.lease_version, owner=owner, until=until, video=video
    )


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
    async with database.transaction() as connection:
        result = await connection.execute(
            _EXTEND,
            {
                "video_id": claim.video_id,
                "version": claim.version,
                "owner": claim.owner,
                "lease_until": until,
            },
        )
    if not result.rowcount:
        raise LeaseLost(claim.video_id)
    return replace(claim, until=until)


_EXTEND = update(_VIDEOS).where(
    _VIDEOS.c.id == bindparam("video_id"),
    _VIDEOS.c.lease_version == bindparam("version"),
    _VIDEOS.c.lease_owner == bindparam("owner"),
)
_LEASE_VERSIONS = select(_VIDEOS.c.id, _VIDEOS.c.lease_version).where(
    _VIDEOS.c.id.in_(bindparam("video_ids", expanding=True))
)


def check_held(batch: Batch, claim: Claim) -> None:
    """Fail the batch with LeaseLost unless the claim's fencing token is still the video's when
    it commits: for a side effect outside the database that must not happen once someone else
    holds the video. The checks of a whole batch are one read."""
    batch.check(_held, (claim.video_id, claim.version), LeaseLost(claim.video_id))


async def _held(connection: AsyncConnection, claims: list[Hashable]) -> set[Hashable]:
    """Of these (video id, version) pairs, the ones whose version is still the video's."""
    video_ids = [video_id for video_id, _ in cast(list[tuple[str, int]], claims)]
    rows = await connection.execute(_LEASE_VERSIONS, {"video_ids": video_ids})
    return {(video_id, version) for video_id, version in rows}


# Every write under a lease runs one of these Core statements, built once, with the new values
# as execution parameters: SQLAlchemy then sets the columns the parameters name. Building the
# statement anew per write, `.values(...)` included, cost about a fifth of the engine's CPU;
# running it through an ORM session instead of a connection, about a third of each
# statement's (py-spy, SQLite). The fence's parameter names can't meet a column's.
_FENCE = (
    _VIDEOS.c.id == bindparam("fence_id"),
    _VIDEOS.c.lease_version == bindparam("fence_version"),
)
# The final cost goes in with the write that ends the job, unless the ledger is already closed:
# the settle or refund that follows in the same transaction is then refused too, so the video's
# cost and its ledger agree (and the ledger has no cost of its own to write).
_FENCED = update(_VIDEOS).where(*_FENCE)
_FENCED_COSTED = _FENCED.values(
    cost_final=case(
        (ledger_closed(_VIDEOS.c.id), _VIDEOS.c.cost_final),
        else_=bindparam("final_cost", type_=_VIDEOS.c.cost_final.type),
    )
)
_VIDEO_MANAGER = inspect(Video).class_manager
# Parameters name columns, not attributes (`metadata`, not `metadata_`); an unknown one would be
# dropped without a word, so each is looked up here and a wrong name fails loudly.
_COLUMN_OF = {prop.key: prop.columns[0].key for prop in inspect(Video).column_attrs}


def _fence_parameters(claim: Claim, values: dict[str, Any]) -> dict[str, Any]:
    parameters = {_COLUMN_OF[name]: value for name, value in values.items()}
    parameters.update(updated_at=utcnow(), fence_id=claim.video_id, fence_version=claim.version)
    return parameters


def fenced(batch: Batch, claim: Claim, *, final_cost: Decimal | None = None, **values: Any) -> None:
    """Apply `values` (by attribute name) only while the claim's fencing token is the video's,
    at the end of the job engine's batch: there the batch's fenced writes of the same columns
    go as one statement. The batch fails with LeaseLost unless the token was still the video's.

    `final_cost`: also the video's final cost, written only while its ledger is open (for the
    write that ends a job, before its settle or refund).
    """
    parameters = _fence_parameters(claim, values)
    statement = _FENCED
    if final_cost is not None:
        statement = _FENCED_COSTED
        parameters["final_cost"] = final_cost
    batch.update(statement, parameters, LeaseLost(claim.video_id))


def released(next_check_at: datetime | None) -> dict[str, Any]:
    """The column values that give a lease back: merged into a step's last fenced write."""
    return {"lease_owner": None, "lease_until": None, "next_check_at": next_check_at}


async def release(database: Database, claim: Claim, *, next_check_at: datetime | None) -> bool:
    """Give the lease back and say when the video is next due; False if it wasn't ours."""
    async with database.transaction() as connection:
        result = await connection.execute(
            _FENCED, _fence_parameters(claim, released(next_check_at))
        )
    return bool(result.rowcount)


class LeaseLost(Exception):
    """Someone else holds this video now (our lease ran out, or a user cancelled it)."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        super().__init__(f"lease on {video_id} lost")
