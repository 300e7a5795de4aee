"""What `/metrics` reports of the installation as a whole, read from the database.

Read at scrape time from the one place every process writes to, so any number of API servers
and workers give the same figures, whichever process is scraped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, FunctionElement, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from reelforge.db.engine import Database
from reelforge.db.models import (
    LedgerEntry,
    UpstreamCall,
    Video,
    WebhookDelivery,
    WorkerHeartbeat,
)

CallKey = tuple[str, str, str]  # provider, operation, code


# The upper bounds (seconds) of the job-step histogram's buckets: from a fast emulator run to
# a vendor's slowest generation.
STEP_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0)


class _SecondsBetween(FunctionElement[float]):
    """Seconds from the first timestamp to the second, in either dialect's own arithmetic."""

    type = Float()
    inherit_cache = True


@compiles(_SecondsBetween, "sqlite")
def _seconds_sqlite(element: _SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(_SecondsBetween, "postgresql")
def _seconds_postgresql(element: _SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


# A job's steps, each from the moment it starts to the one it ends: waiting for a worker to
# send it upstream, upstream generating it, and downloading and archiving it.
STEPS: dict[str, tuple[Any, Any]] = {
    "queue": (Video.created_at, Video.submitted_at),
    "generation": (Video.submitted_at, Video.completed_at),
    "archive": (Video.completed_at, Video.archived_at),
}


@dataclass(frozen=True)
class StepLatency:
    """One step's durations over every video that went through it, bucketed as Prometheus
    histograms are (`buckets[i]`: how many took at most `STEP_BUCKETS[i]`)."""

    count: int
    total_seconds: float
    buckets: tuple[int, ...]


@dataclass(frozen=True)
class Totals:
    videos_by_state: dict[tuple[str, str], int]  # (provider, job_state)
    oldest_due_at: datetime | None
    video_polls: dict[str, int]  # by provider: the videos' own counters, summed
    video_poll_errors: dict[str, int]
    archive_retries: dict[str, int]
    upstream_calls: dict[CallKey, int]  # every process's, summed
    step_latency: dict[tuple[str, str], StepLatency]  # (provider, step)
    archive_bytes: int
    ledger: dict[str, Decimal]  # by kind: reserve, settle, refund, import
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
        counters = await connection.execute(
            select(
                Video.provider,
                func.sum(Video.polls),
                func.sum(Video.poll_errors),
                func.sum(Video.archive_failures),
            ).group_by(Video.provider)
        )
        calls = await connection.execute(
            select(
                UpstreamCall.provider,
                UpstreamCall.operation,
                UpstreamCall.code,
                func.sum(UpstreamCall.count),
            ).group_by(UpstreamCall.provider, UpstreamCall.operation, UpstreamCall.code)
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
        latency = {
            (provider, step): figures
            for step, (start, end) in STEPS.items()
            for provider, figures in (await _step_latency(connection, start, end)).items()
        }
        rows = counters.all()
        return Totals(
            videos_by_state={
                (provider, str(getattr(state, "value", state))): count
                for provider, state, count in states
            },
            oldest_due_at=oldest,
            video_polls={provider: int(polls or 0) for provider, polls, _, _ in rows},
            video_poll_errors={provider: int(errors or 0) for provider, _, errors, _ in rows},
            archive_retries={provider: int(retries or 0) for provider, _, _, retries in rows},
            upstream_calls={
                (provider, operation, code): int(count or 0)
                for provider, operation, code, count in calls
            },
            step_latency=latency,
            archive_bytes=int(stored or 0),
            ledger={kind: Decimal(amount or 0) for kind, amount in ledger},
            deliveries={status: count for status, count in deliveries},
            last_heartbeat_at=heartbeat,
        )


async def _step_latency(
    connection: AsyncConnection, start: Any, end: Any
) -> dict[str, StepLatency]:
    """Each provider's durations of one step, bucketed in the database (one row per provider,
    whatever the number of videos). Imported videos were never submitted here: left out."""
    seconds = _SecondsBetween(start, end)
    query = (
        select(
            Video.provider,
            func.count(),
            func.coalesce(func.sum(seconds), 0),
            *(func.sum(case((seconds <= bound, 1), else_=0)) for bound in STEP_BUCKETS),
        )
        .where(start.is_not(None), end.is_not(None), Video.submitted_at.is_not(None))
        .group_by(Video.provider)
    )
    return {
        provider: StepLatency(
            count=int(count),
            total_seconds=max(0.0, float(total)),
            buckets=tuple(int(n or 0) for n in buckets),
        )
        for provider, count, total, *buckets in (await connection.execute(query)).all()
    }


async def save_upstream_calls(
    database: Database, process: str, counts: Mapping[CallKey, int], now: datetime
) -> None:
    """Write one process's running totals of upstream calls (totals, not increments: a write
    that fails is simply made whole by the next)."""
    if not counts:
        return
    dialect = postgresql if database.dialect == "postgresql" else sqlite
    rows = [
        {
            "process": process,
            "provider": provider,
            "operation": operation,
            "code": code,
            "count": count,
            "updated_at": now,
        }
        for (provider, operation, code), count in counts.items()
    ]
    statement = dialect.insert(UpstreamCall)
    statement = statement.on_conflict_do_update(
        index_elements=["process", "provider", "operation", "code"],
        set_={"count": statement.excluded.count, "updated_at": statement.excluded.updated_at},
    )
    async with database.transaction() as connection:
        await connection.execute(statement, rows)
