"""Queries behind the admin's views: activity per day, failed videos, jobs, all deliveries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from reelforge.db.models import LedgerEntry, User, Video, WebhookDelivery, WebhookEndpoint
from reelforge.db.videos import to_view
from reelforge.db.webhooks import delivery_view
from reelforge.domain.admin import DayActivity, DeliveryRow, JobRow, OwnedVideo
from reelforge.domain.states import JobState
from reelforge.domain.webhooks import DeliveryStatus

_FAILED = [JobState.FAILED.value, JobState.EXPIRED.value]


async def activity_since(connection: AsyncConnection, since: datetime) -> dict[date, DayActivity]:
    """Videos created per UTC day by how they stand now, and ledger spend per day, from `since`.

    Days are cut in Python from the UTC timestamps: SQL's date() follows the session's time zone
    on PostgreSQL, and the window is bounded (`MAX_ACTIVITY_DAYS`).
    """
    days: dict[date, DayActivity] = {}
    videos = await connection.execute(
        select(Video.created_at, Video.job_state).where(Video.created_at >= since)
    )
    for created_at, state in videos.all():
        day = created_at.date()
        current = days.get(day) or DayActivity(day)
        days[day] = current.add(JobState(state).public_status.value, 1)
    spend = await connection.execute(
        select(LedgerEntry.created_at, LedgerEntry.amount).where(LedgerEntry.created_at >= since)
    )
    for created_at, amount in spend.all():
        day = created_at.date()
        days[day] = (days.get(day) or DayActivity(day)).with_spend(Decimal(amount))
    return days


def _owned(row: Row[Any]) -> OwnedVideo:
    return OwnedVideo(video=to_view(row), owner_email=row.owner_email, last_error=row.last_error)


_WITH_OWNER: Select[Any] = select(*Video.__table__.columns, User.email.label("owner_email")).join(
    User, User.id == Video.owner_id
)


async def failed_videos(connection: AsyncConnection, limit: int) -> list[OwnedVideo]:
    query = (
        _WITH_OWNER.where(Video.job_state.in_(_FAILED))
        .order_by(Video.updated_at.desc(), Video.id.desc())
        .limit(limit)
    )
    return [_owned(row) for row in (await connection.execute(query)).all()]


def _job(row: Row[Any]) -> JobRow:
    return JobRow(
        video=to_view(row),
        owner_email=row.owner_email,
        attempts=row.attempts,
        next_check_at=row.next_check_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        lease_version=row.lease_version,
        submitted_at=row.submitted_at,
        deadline_at=row.deadline_at,
        deleted_at=row.deleted_at,
        provider_video_id=row.provider_video_id,
        last_error=row.last_error,
    )


async def recent_jobs(connection: AsyncConnection, limit: int) -> list[JobRow]:
    query = _WITH_OWNER.order_by(Video.created_at.desc(), Video.id.desc()).limit(limit)
    return [_job(row) for row in (await connection.execute(query)).all()]


async def job(connection: AsyncConnection, video_id: str) -> JobRow | None:
    row = (await connection.execute(_WITH_OWNER.where(Video.id == video_id))).first()
    return _job(row) if row is not None else None


_DELIVERIES = (
    select(WebhookDelivery, WebhookEndpoint.url, User.email)
    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    .join(User, User.id == WebhookEndpoint.user_id)
)


def _delivery(delivery: WebhookDelivery, url: str, email: str) -> DeliveryRow:
    return DeliveryRow(delivery=delivery_view(delivery), url=url, owner_email=email)


async def deliveries(
    session: AsyncSession, status: DeliveryStatus | None, limit: int
) -> list[DeliveryRow]:
    query = _DELIVERIES
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows = (await session.execute(query.limit(limit))).all()
    return [_delivery(row[0], row[1], row[2]) for row in rows]
