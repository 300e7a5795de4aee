"""What `/metrics` reports of the installation as a whole, read from the database.

Read at scrape time from the one place every process writes to, so any number of API servers
and workers give the same figures, whichever process is scraped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video, WebhookDelivery, WorkerHeartbeat


@dataclass(frozen=True)
class Totals:
    videos_by_state: dict[tuple[str, str], int]  # (provider, job_state)
    oldest_due_at: datetime | None
    upstream_polls: dict[str, int]  # by provider
    upstream_poll_errors: dict[str, int]
    archive_bytes: int
    ledger: dict[str, Decimal]  # by kind: reserve, settle, refund
    deliveries: dict[str, int]  # by status
    last_heartbeat_at: datetime | None


async def totals(database: Database, now: datetime) -> Totals:
    archived = (
        func.coalesce(Video.video_bytes, 0)
        + func.coalesce(Video.thumbnail_bytes, 0)
        + func.coalesce(Video.spritesheet_bytes, 0)
    )
    async with database.reading() as connection:
        states = await connection.execute(
            select(Video.provider, Video.job_state, func.count()).group_by(
                Video.provider, Video.job_state
            )
        )
        upstream = await connection.execute(
            select(Video.provider, func.sum(Video.polls), func.sum(Video.poll_errors)).group_by(
                Video.provider
            )
        )
        oldest = await connection.scalar(
            select(func.min(Video.next_check_at)).where(Video.next_check_at <= now)
        )
        stored = await connection.scalar(
            select(func.coalesce(func.sum(archived), 0)).where(Video.deleted_at.is_(None))
        )
        ledger = await connection.execute(
            select(LedgerEntry.kind, func.sum(LedgerEntry.amount)).group_by(LedgerEntry.kind)
        )
        deliveries = await connection.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        )
        heartbeat = await connection.scalar(select(func.max(WorkerHeartbeat.beat_at)))
        upstream_rows = upstream.all()
        return Totals(
            videos_by_state={
                (provider, str(getattr(state, "value", state))): count
                for provider, state, count in states
            },
            oldest_due_at=oldest,
            upstream_polls={provider: int(polls or 0) for provider, polls, _ in upstream_rows},
            upstream_poll_errors={
                provider: int(errors or 0) for provider, _, errors in upstream_rows
            },
            archive_bytes=int(stored or 0),
            ledger={kind: Decimal(amount or 0) for kind, amount in ledger},
            deliveries={status: count for status, count in deliveries},
            last_heartbeat_at=heartbeat,
        )
