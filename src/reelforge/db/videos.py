"""Queries for videos, their events, the ledger and quotas, returning domain read models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from reelforge.db.group import Batch
from reelforge.db.models import LedgerEntry, Quota, Video, VideoEvent
from reelforge.domain.clock import utcnow
from reelforge.domain.quotas import QuotaPolicy
from reelforge.domain.records import VideoRecord
from reelforge.domain.states import JobState
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import (
    UNCOUNTED_STATES,
    ArchivedObject,
    EventView,
    Order,
    Page,
    VideoView,
)


def to_view(video: Video | VideoRecord | Row[Any]) -> VideoView:
    """From an ORM object or a Core row of `videos` (the hot read path skips the ORM)."""
    return VideoView(
        id=video.id,
        owner_id=video.owner_id,
        provider=video.provider,
        model=video.model,
        prompt=video.prompt,
        size=video.size,
        seconds=str(video.seconds),
        job_state=JobState(video.job_state),
        progress=video.progress,
        error_code=video.error_code,
        error_message=video.error_message,
        remixed_from_video_id=video.remixed_from_video_id,
        created_at=video.created_at,
        completed_at=video.completed_at,
        expires_at=video.expires_at,
        archived_at=video.archived_at,
        cost_estimate=video.cost_estimate,
        cost_final=video.cost_final,
        archive=_archive(video),
        queue_position=video.queue_position,
        vendor_message=video.vendor_message,
    )


def _archive(video: Video | VideoRecord | Row[Any]) -> dict[Variant, ArchivedObject]:
    found = {}
    for variant in Variant:
        key = getattr(video, f"{variant.value}_key")
        if key:
            found[variant] = ArchivedObject(
                key=key,
                size=getattr(video, f"{variant.value}_bytes"),
                sha256=getattr(video, f"{variant.value}_sha256"),
            )
    return found


def to_event(event: VideoEvent) -> EventView:
    return EventView(
        id=event.id,
        video_id=event.video_id,
        kind=event.kind,
        actor=event.actor,
        data=dict(event.data),
        created_at=event.created_at,
    )


def _visible(owner_id: str | None, *, include_deleted: bool = False) -> ColumnElement[bool]:
    """Not deleted, and the caller's own unless `owner_id` is None (an admin)."""
    live = true() if include_deleted else Video.deleted_at.is_(None)
    return live if owner_id is None else and_(live, Video.owner_id == owner_id)


async def visible_video(
    session: AsyncSession,
    video_id: str,
    owner_id: str | None,
    *,
    for_update: bool = False,
    include_deleted: bool = False,
) -> Video | None:
    query = select(Video).where(
        Video.id == video_id, _visible(owner_id, include_deleted=include_deleted)
    )
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


# The hottest query there is, built once: constructing a statement and its cache key on every
# call costs more than running it (see bench/api.py).
_LIVE_VIDEO = select(*Video.__table__.columns).where(
    Video.id == bindparam("video_id"), Video.deleted_at.is_(None)
)
_OWN_LIVE_VIDEO = _LIVE_VIDEO.where(Video.owner_id == bindparam("owner_id"))


async def visible_view(
    connection: AsyncConnection, video_id: str, owner_id: str | None
) -> VideoView | None:
    """A video as its reader sees it (see `_visible`), read as a plain row."""
    if owner_id is None:
        result = await connection.execute(_LIVE_VIDEO, {"video_id": video_id})
    else:
        result = await connection.execute(
            _OWN_LIVE_VIDEO, {"video_id": video_id, "owner_id": owner_id}
        )
    row = result.first()
    return to_view(row) if row is not None else None


async def page_of_videos(
    session: AsyncSession,
    owner_id: str | None,
    *,
    after: Video | None,
    limit: int,
    order: Order,
    offset: int = 0,
    status: list[str] | None = None,
    model: str | None = None,
    provider: str | None = None,
    text: str | None = None,
) -> Page:
    """Keyset pagination on (created_at, id), so pages stay stable while videos are added;
    `offset` skips that many more, for clients that page by position."""
    query = select(Video).where(_visible(owner_id))
    if status:
        query = query.where(Video.job_state.in_(status))
    if model:
        query = query.where(Video.model == model)
    if provider:
        query = query.where(Video.provider == provider)
    if text:
        query = query.where(Video.prompt.ilike(f"%{_escape_like(text)}%", escape="\\"))
    if after is not None:
        query = query.where(_beyond(after, order))
    if order is Order.DESC:
        query = query.order_by(Video.created_at.desc(), Video.id.desc())
    else:
        query = query.order_by(Video.created_at.asc(), Video.id.asc())
    if offset:
        query = query.offset(offset)
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    return Page(items=[to_view(v) for v in rows[:limit]], has_more=len(rows) > limit)


def _beyond(after: Video, order: Order) -> ColumnElement[bool]:
    if order is Order.DESC:
        return or_(
            Video.created_at < after.created_at,
            and_(Video.created_at == after.created_at, Video.id < after.id),
        )
    return or_(
        Video.created_at > after.created_at,
        and_(Video.created_at == after.created_at, Video.id > after.id),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def events_of(session: AsyncSession, video_id: str) -> list[EventView]:
    query = select(VideoEvent).where(VideoEvent.video_id == video_id).order_by(VideoEvent.id)
    return [to_event(e) for e in (await session.scalars(query)).all()]


_QUOTAS = cast(Table, Quota.__table__)


async def lock_quota(connection: AsyncConnection, user_id: str, now: datetime) -> Row[Any] | None:
    """Take the user's quota row for the rest of the transaction, and read it.

    An UPDATE is the one statement that locks alike on both databases: a row lock on
    PostgreSQL, the write lock on SQLite (taken before any read, so no upgrade deadlock).
    Concurrent creates by one user therefore check and reserve one after another.
    """
    statement = (
        update(_QUOTAS)
        .where(_QUOTAS.c.user_id == user_id)
        .values(updated_at=now)
        .returning(*_QUOTAS.c)
    )
    return (await connection.execute(statement)).first()


async def quota_of(connection: AsyncConnection, user_id: str) -> Row[Any] | None:
    return (await connection.execute(select(_QUOTAS).where(_QUOTAS.c.user_id == user_id))).first()


async def set_quota(
    connection: AsyncConnection, user_id: str, policy: QuotaPolicy
) -> Row[Any] | None:
    """The user's new limits (their current period carries on); None when there's no user."""
    statement = (
        update(_QUOTAS)
        .where(_QUOTAS.c.user_id == user_id)
        .values(
            max_videos_per_period=policy.max_videos,
            period_days=policy.period_days,
            monthly_budget=policy.monthly_budget,
            updated_at=utcnow(),
        )
        .returning(*_QUOTAS.c)
    )
    return (await connection.execute(statement)).first()


async def start_quota_period(connection: AsyncConnection, user_id: str, start: datetime) -> None:
    statement = update(_QUOTAS).where(_QUOTAS.c.user_id == user_id)
    await connection.execute(statement.values(period_started_at=start))


async def videos_counted_since(connection: AsyncConnection, owner_id: str, since: datetime) -> int:
    query = select(func.count()).where(
        Video.owner_id == owner_id,
        Video.created_at >= since,
        Video.job_state.not_in(UNCOUNTED_STATES),
        # Imported videos (`reelforge import`) were made, and counted, elsewhere.
        ~exists().where(LedgerEntry.video_id == Video.id, LedgerEntry.kind == "import"),
    )
    return int(await connection.scalar(query) or 0)


async def spend_since(connection: AsyncConnection, user_id: str, since: datetime) -> Decimal:
    query = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.user_id == user_id, LedgerEntry.created_at >= since
    )
    return Decimal(await connection.scalar(query) or 0)


_BY_IDEMPOTENCY_KEY = select(*Video.__table__.columns).where(
    Video.owner_id == bindparam("owner_id"), Video.idempotency_key == bindparam("key")
)


async def video_by_idempotency_key(
    connection: AsyncConnection, owner_id: str, key: str
) -> Row[Any] | None:
    return (
        await connection.execute(_BY_IDEMPOTENCY_KEY, {"owner_id": owner_id, "key": key})
    ).first()


_UPSTREAM_JOB = select(Video.id).where(
    Video.provider == bindparam("provider"), Video.provider_video_id == bindparam("upstream_id")
)


async def upstream_job_taken(connection: AsyncConnection, provider: str, upstream_id: str) -> bool:
    """Whether a video already refers to this upstream job."""
    parameters = {"provider": provider, "upstream_id": upstream_id}
    return await connection.scalar(_UPSTREAM_JOB, parameters) is not None


_ADD_EVENTS = insert(cast(Table, VideoEvent.__table__))


def add_events(
    batch: Batch,
    video_id: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    actor: str | None = None,
) -> None:
    """Append `(kind, data)` events to a video's history when the batch commits, in one
    statement with the batch's other events (no ids come back: nothing reads them there)."""
    now = utcnow()
    rows = [
        {"video_id": video_id, "kind": kind, "actor": actor, "data": data, "created_at": now}
        for kind, data in events
    ]
    batch.insert(_ADD_EVENTS, rows)


_LEDGER_TABLE = cast(Table, LedgerEntry.__table__)
_LEDGER = _LEDGER_TABLE.c


def ledger_closed(video_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the video's ledger is closed: it has its settle or its refund."""
    # Not `kind IN (...)`: SQLAlchemy expands an IN list per execution, which executemany
    # (the job engine's batched ledger rows) can't do.
    closing = or_(_LEDGER.kind == "settle", _LEDGER.kind == "refund")
    return exists().where(_LEDGER.video_id == video_id, closing)


# A settle or refund closes a video's ledger: the row goes in only when neither is there yet,
# checked and written in one statement (the (video, kind) unique constraint backs it up).
_CLOSE_LEDGER = insert(_LEDGER_TABLE).from_select(
    ["user_id", "video_id", "kind", "amount", "created_at"],
    select(
        bindparam("user_id", type_=_LEDGER.user_id.type),
        bindparam("video_id", type_=_LEDGER.video_id.type),
        bindparam("kind", type_=_LEDGER.kind.type),
        bindparam("amount", type_=_LEDGER.amount.type),
        bindparam("created_at", type_=_LEDGER.created_at.type),
    ).where(~ledger_closed(bindparam("video_id"))),
)


def close_ledger(
    batch: Batch, *, user_id: str, video_id: str, kind: str, amount: Decimal, now: datetime
) -> None:
    """Add the video's settle or refund row when the batch commits, unless it has one of them
    already (the write that ends a job put the final cost in only while the ledger was open)."""
    batch.insert(_CLOSE_LEDGER, [_ledger_row(user_id, video_id, kind, amount, now)])


async def reserve(connection: AsyncConnection, video: VideoRecord, now: datetime) -> None:
    """The video's reservation: its estimate, counted in the month's spend from now on."""
    row = _ledger_row(video.owner_id, video.id, "reserve", video.cost_estimate, now)
    await connection.execute(insert(_LEDGER_TABLE), row)


def _ledger_row(
    user_id: str, video_id: str, kind: str, amount: Decimal, now: datetime
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "video_id": video_id,
        "kind": kind,
        "amount": amount,
        "created_at": now,
    }
