"""The job claim (the one dialect-specific statement in Reelforge) and writes fenced by its token.

One statement takes a lease on the due videos and bumps each one's fencing token:
PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, so workers never wait on each other;
SQLite runs the same UPDATE inside `BEGIN IMMEDIATE`, which takes the single write lock
before reading, so two claimers are serialised and can't both pick a row (DESIGN.md §1, §4).
Every later write of the holder names the token, and changes nothing once it is stale. A
user's change (cancel, delete) bumps the token too, so a step still holding the old lease can't
undo it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    Update,
    and_,
    bindparam,
    case,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db.engine import Database
from reelforge.db.group import Batch
from reelforge.db.models import Video
from reelforge.db.videos import ledger_closed
from reelforge.domain.clock import utcnow
from reelforge.domain.records import VideoRecord, differences

_VIDEOS = cast(Table, Video.__table__)
_C = _VIDEOS.c


@dataclass(frozen=True)
class Claim:
    """A lease on one video, taken by `owner` until `until`: `video` is the row as the claim
    left it, and writes under the lease name its `lease_version`."""

    video: VideoRecord
    owner: str
    until: datetime

    @property
    def video_id(self) -> str:
        return self.video.id

    @property
    def version(self) -> int:
        return self.video.lease_version


class LeaseLost(Exception):
    """Someone else holds this video now (our lease ran out, or a user changed it)."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        super().__init__(f"lease on {video_id} lost")


def record_of(row: Row[Any]) -> VideoRecord:
    return VideoRecord(**row._asdict())


def _claim_statement(*, skip_locked: bool) -> Update:
    """Lease the due videos whose lease (if any) ran out, oldest check first."""
    due = (
        select(_C.id)
        .where(
            _C.next_check_at.is_not(None),
            _C.next_check_at <= bindparam("now"),
            or_(_C.lease_until.is_(None), _C.lease_until < bindparam("now")),
        )
        .order_by(_C.next_check_at)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    return (
        update(_VIDEOS)
        .where(_C.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=bindparam("owner"),
            lease_until=bindparam("until"),
            lease_version=_C.lease_version + 1,
        )
        .returning(*_C)
    )


_CLAIM = _claim_statement(skip_locked=False)
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
        if database.dialect == "sqlite":
            # The driver would open a deferred transaction; a claim must hold the write lock
            # from its first read. PostgreSQL's row locks already do that job.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        rows = (await connection.execute(statement, parameters)).all()
    return [Claim(record_of(row), owner, until) for row in rows]


_FENCE = (_C.id == bindparam("fence_id"), _C.lease_version == bindparam("fence_version"))
_EXTEND = update(_VIDEOS).where(*_FENCE, _C.lease_owner == bindparam("fence_owner"))
_FENCED = update(_VIDEOS).where(*_FENCE)
# The final cost goes in only while the ledger is open: the settle or refund that follows in
# the same unit of work is then refused too, so a video's cost and its ledger always agree.
_FENCED_COSTED = _FENCED.values(
    cost_final=case(
        (ledger_closed(_C.id), _C.cost_final),
        else_=bindparam("final_cost", type_=_C.cost_final.type),
    )
)
# A provider's webhook nudges a video (due now) without its lease, so it may land while a step
# holds it. Nobody else writes the due time under a lease, so a due time other than the one the
# holder last wrote is a nudge, and the holder's own later due time must not undo it.
_DUE = bindparam("due", type_=_C.next_check_at.type)
_NUDGED = _C.next_check_at.is_distinct_from(bindparam("fence_due", type_=_C.next_check_at.type))
# The sooner of the two, or the nudge's when the holder names none.
_DUE_KEEPING_NUDGE = {
    "next_check_at": case(
        (and_(_NUDGED, or_(_DUE.is_(None), _C.next_check_at < _DUE)), _C.next_check_at),
        else_=_DUE,
    )
}
_FENCED_DUE = _FENCED.values(_DUE_KEEPING_NUDGE)
_FENCED_COSTED_DUE = _FENCED_COSTED.values(_DUE_KEEPING_NUDGE)


def _fence(video: VideoRecord) -> dict[str, Any]:
    return {"fence_id": video.id, "fence_version": video.lease_version}


def _due(video: VideoRecord, next_check_at: datetime | None) -> dict[str, Any]:
    """The parameters of a due time written under `video`'s fence (see `_DUE_KEEPING_NUDGE`)."""
    return {"due": next_check_at, "fence_due": video.next_check_at}


async def extend(database: Database, claim: Claim, *, now: datetime, lease: timedelta) -> Claim:
    """Hold the lease longer; LeaseLost when it is no longer ours (also once a step's last
    write gave it back, so a late heartbeat can't take it again)."""
    until = now + lease
    parameters = _fence(claim.video) | {"fence_owner": claim.owner, "lease_until": until}
    async with database.transaction() as connection:
        result = await connection.execute(_EXTEND, parameters)
    if not result.rowcount:
        raise LeaseLost(claim.video_id)
    return replace(claim, until=until)


async def release(database: Database, claim: Claim, *, next_check_at: datetime | None) -> bool:
    """Give the lease back and say when the video is next due; False if it wasn't ours."""
    parameters = _fence(claim.video) | _due(claim.video, next_check_at)
    parameters |= {"lease_owner": None, "lease_until": None, "updated_at": utcnow()}
    async with database.transaction() as connection:
        result = await connection.execute(_FENCED_DUE, parameters)
    return bool(result.rowcount)


def fenced(
    batch: Batch, before: VideoRecord, after: VideoRecord, *, final_cost: Decimal | None = None
) -> None:
    """Write what `after` changes of `before`, at the end of the batch, only while `before`'s
    fencing token is still the video's; the batch fails with LeaseLost otherwise.

    `final_cost`: the video's final cost too, written only while its ledger is open.
    """
    parameters = differences(before, after) | _fence(before)
    parameters["updated_at"] = utcnow()
    dated = "next_check_at" in parameters
    if dated:
        parameters |= _due(before, parameters.pop("next_check_at"))
    statement = _FENCED_DUE if dated else _FENCED
    if final_cost is not None:
        statement = _FENCED_COSTED_DUE if dated else _FENCED_COSTED
        parameters.pop("cost_final", None)
        parameters["final_cost"] = final_cost
    batch.update(statement, parameters, LeaseLost(before.id))


_LEASE_VERSIONS = select(_C.id, _C.lease_version).where(
    _C.id.in_(bindparam("video_ids", expanding=True))
)


def check_held(batch: Batch, claim: Claim) -> None:
    """Fail the batch with LeaseLost unless the claim's token is still the video's when it
    commits: for a side effect outside the database that must not happen once someone else
    holds the video. The checks of a whole batch are one read."""
    batch.check(_held, (claim.video_id, claim.version), LeaseLost(claim.video_id))


async def _held(connection: AsyncConnection, claims: list[Hashable]) -> set[Hashable]:
    video_ids = [video_id for video_id, _ in cast(list[tuple[str, int]], claims)]
    rows = await connection.execute(_LEASE_VERSIONS, {"video_ids": video_ids})
    return {(video_id, version) for video_id, version in rows}


async def take_for_change(
    connection: AsyncConnection, video_id: str, owner_id: str | None, *, include_deleted: bool
) -> VideoRecord | None:
    """The video, fenced from every lease holder and locked for the rest of the transaction
    (its token bumped: a row lock on PostgreSQL, the write lock on SQLite), or None when the
    caller can't see it (`owner_id` None: an admin sees every owner's)."""
    visible: ColumnElement[bool] = true() if include_deleted else _C.deleted_at.is_(None)
    if owner_id is not None:
        visible = and_(visible, _C.owner_id == owner_id)
    statement = (
        update(_VIDEOS)
        .where(_C.id == video_id, visible)
        .values(lease_version=_C.lease_version + 1)
        .returning(*_C)
    )
    row = (await connection.execute(statement)).first()
    return record_of(row) if row is not None else None


_GIVE_BACK = update(_VIDEOS).where(*_FENCE).values(lease_version=bindparam("fence_version") - 1)


async def give_back(connection: AsyncConnection, video: VideoRecord) -> None:
    """Undo `take_for_change`'s fence when the change decided to write nothing: a lease
    holder's work is still good, and fencing it out would strand the video until its lease
    ran out (a second cancel held a cancelled video's clean-up back by a whole lease)."""
    await connection.execute(_GIVE_BACK, _fence(video))


_INSERT = insert(_VIDEOS)


async def add_video(connection: AsyncConnection, video: VideoRecord) -> None:
    await connection.execute(_INSERT, {column.key: getattr(video, column.key) for column in _C})
