"""The embedded job engine as `/ready` sees it: running, turning recently, or ended and why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import anyio

from reelforge.domain.clock import utcnow
from reelforge.logs import get_logger

log = get_logger("reelforge.engine")


class Turning(Protocol):
    """A loop that records when it last went round (the job engine)."""

    turned_at: datetime | None

    async def run(self, stopping: anyio.Event) -> None: ...


class EngineStoppedError(Exception):
    """The embedded engine's loop ended, crashed or has not turned within the allowed silence."""


class EngineWatch:
    """Runs the engine's loop and answers for it: a crash is kept (with its reason) for `/ready`
    rather than taking the server down with it, so the API still serves what is archived."""

    def __init__(self, engine: Turning, silence: timedelta | None) -> None:
        self.engine = engine
        self.silence = silence
        self.ended: str | None = None
        self.started_at = utcnow()

    async def run(self, stopping: anyio.Event) -> None:
        self.started_at = utcnow()
        try:
            await self.engine.run(stopping)
        except Exception as exc:
            self.ended = f"crashed: {type(exc).__name__}: {exc}"
            log.exception("the job engine's loop crashed; /ready reports it")
        else:
            self.ended = "stopped" if stopping.is_set() else "ended without being asked to stop"

    async def check(self) -> None:
        """Raise EngineStoppedError unless the loop runs and turned within the silence."""
        if self.ended is not None:
            raise EngineStoppedError(f"the job engine's loop {self.ended}; restart the server")
        if self.silence is None:
            return
        quiet = utcnow() - (self.engine.turned_at or self.started_at)
        if quiet > self.silence:
            raise EngineStoppedError(
                f"the job engine's loop has not turned for {int(quiet.total_seconds())} s "
                f"(REELFORGE_WORKER_SILENCE_SECONDS allows {int(self.silence.total_seconds())})"
                ": is the database answering? (`reelforge doctor`)"
            )
