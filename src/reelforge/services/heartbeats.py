"""Worker heartbeats: each job-engine process says it is alive; `/ready` and `doctor` ask
when any last did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update

from reelforge.db.engine import Database
from reelforge.db.models import WorkerHeartbeat
from reelforge.domain.clock import utcnow


class WorkersSilentError(Exception):
    """No worker has beaten within the allowed silence."""


class Heartbeats:
    def __init__(
        self, database: Database, on_beat: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._database = database
        # What a live process reports with each beat besides being alive (its upstream calls).
        self._on_beat = on_beat

    async def beat(self, name: str) -> None:
        """Record that the worker `name` is alive now (its row is made on the first beat)."""
        now = utcnow()
        async with self._database.transaction() as connection:
            changed = await connection.execute(
                update(WorkerHeartbeat).where(WorkerHeartbeat.name == name).values(beat_at=now)
            )
            if changed.rowcount == 0:
                await connection.execute(
                    insert(WorkerHeartbeat).values(name=name, started_at=now, beat_at=now)
                )
        if self._on_beat is not None:
            await self._on_beat()

    async def latest(self) -> datetime | None:
        """When any worker last beat; None if none ever did."""
        async with self._database.reading() as connection:
            latest: datetime | None = await connection.scalar(
                select(func.max(WorkerHeartbeat.beat_at))
            )
        return latest

    async def check(self, silence: timedelta) -> None:
        """Raise WorkersSilentError unless some worker beat within `silence` (for /ready)."""
        latest = await self.latest()
        if latest is None:
            raise WorkersSilentError("no worker has ever beaten: start `reelforge worker`")
        quiet = utcnow() - latest
        if quiet > silence:
            raise WorkersSilentError(
                f"no worker seen for {int(quiet.total_seconds())} s (last at "
                f"{latest:%Y-%m-%d %H:%M:%S} UTC): start `reelforge worker`"
            )
