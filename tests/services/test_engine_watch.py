"""The embedded engine as /ready sees it: a crash or an end is reported with its reason, and a
loop that stops turning is reported after the allowed silence."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest

from reelforge.domain.clock import utcnow
from reelforge.services.engine_watch import EngineStoppedError, EngineWatch

pytestmark = pytest.mark.anyio


class Loop:
    """A loop that turns `turns` times, then crashes with `crash` or returns."""

    def __init__(self, turns: int, crash: Exception | None = None) -> None:
        self.turned_at: datetime | None = None
        self.turns = turns
        self.crash = crash

    async def run(self, stopping: anyio.Event) -> None:
        for _ in range(self.turns):
            self.turned_at = utcnow()
            await anyio.sleep(0)
        if self.crash is not None:
            raise self.crash


async def test_a_crash_is_kept_with_its_reason_not_raised() -> None:
    watch = EngineWatch(Loop(3, RuntimeError("database is gone")), timedelta(seconds=60))

    await watch.run(anyio.Event())

    with pytest.raises(EngineStoppedError, match="crashed: RuntimeError: database is gone"):
        await watch.check()


async def test_a_loop_that_returns_unasked_is_reported() -> None:
    watch = EngineWatch(Loop(1), timedelta(seconds=60))

    await watch.run(anyio.Event())

    with pytest.raises(EngineStoppedError, match="ended without being asked to stop"):
        await watch.check()


async def test_a_running_loop_is_well_until_it_falls_silent() -> None:
    loop = Loop(0)
    watch = EngineWatch(loop, timedelta(seconds=30))
    loop.turned_at = utcnow()

    await watch.check()
    loop.turned_at = utcnow() - timedelta(seconds=45)
    with pytest.raises(EngineStoppedError, match="has not turned for 45 s"):
        await watch.check()
    # Without a silence setting only an end or a crash counts.
    await EngineWatch(loop, None).check()


async def test_a_loop_that_never_turned_counts_its_silence_from_the_start() -> None:
    watch = EngineWatch(Loop(0), timedelta(seconds=30))
    watch.started_at = utcnow() - timedelta(seconds=31)

    with pytest.raises(EngineStoppedError, match="has not turned"):
        await watch.check()
