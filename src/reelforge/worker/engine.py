"""The job engine: a level-triggered reconcile loop that claims due videos and steps them.

No task queue: the database says what is due (`next_check_at`), a claim takes a lease on it,
a step moves it on and says when it is due again. A wake-up (a new video, a webhook) only
makes the loop look sooner; losing one costs at most `idle_seconds`.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup

from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import ProviderError
from reelforge.logs import get_logger
from reelforge.services.jobs import Claim, Jobs, LeaseLost
from reelforge.services.ratelimits import RateLimiter
from reelforge.worker.steps import StepResult, Steps

log = get_logger("reelforge.engine")

Periodic = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Every:
    """Periodic work the engine runs beside its loop, `seconds` after each run ends."""

    seconds: float
    task: Periodic


@dataclass(eq=False)
class _Held:
    """A step in flight: its claim (as last extended), the scope that stops it, and whether a
    webhook nudged its video meanwhile (the video is due again once the step gives it back)."""

    claim: Claim
    scope: anyio.CancelScope
    nudged: bool = False


@dataclass(frozen=True)
class EngineConfig:
    concurrency: int = 4
    lease: timedelta = timedelta(seconds=120)
    idle_seconds: float = 1.0
    drain_seconds: float = 20.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    def __init__(
        self,
        jobs: Jobs,
        steps: Steps,
        *,
        config: EngineConfig | None = None,
        provider_limiter: RateLimiter | None = None,
        provider_name: str = "provider",
        periodic: list[Every] | None = None,
        owner: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._steps = steps
        self._config = config or EngineConfig()
        self._limiter = provider_limiter
        self._provider_name = provider_name
        self._periodic = periodic or []
        self._wake = anyio.Event()
        self._in_flight = 0
        self._full = False
        self._holding: set[_Held] = set()
        self.owner = owner or worker_name()
        self.turned_at: datetime | None = None  # when the claim loop last went round (/ready)

    def wake(self, video_id: str | None = None) -> None:
        """Look for due work now (a video was accepted, a webhook nudged `video_id`); and once
        more when the step holding `video_id`, if any, ends: until then the claim can't take it."""
        if video_id is not None:
            for held in self._holding:
                if held.claim.video_id == video_id:
                    held.nudged = True
        self._wake.set()

    async def run(self, stopping: anyio.Event) -> None:
        """Claim and step until `stopping` is set, then let in-flight steps finish (bounded).

        Periodic work (webhook deliveries, housekeeping) runs beside the claim loop, each task
        on its own timer: a receiver that hangs delays its own deliveries, never a claim.
        """
        async with anyio.create_task_group() as periodic:
            for every in self._periodic:
                periodic.start_soon(self._every, every)
            async with self._stepping() as steps:
                steps.start_soon(self._wake_when, stopping)
                while not stopping.is_set():
                    self.turned_at = utcnow()
                    claimed = await self._claim()
                    for claim in claimed:
                        self._in_flight += 1
                        steps.start_soon(self._step, claim)
                    if not claimed:
                        await self._idle()
                # Leaving the group waits for in-flight steps; past the deadline they are
                # cancelled, and their leases simply expire for another worker to take over.
                steps.cancel_scope.deadline = anyio.current_time() + self._config.drain_seconds
            periodic.cancel_scope.cancel()

    async def run_once(self) -> int:
        """Claim what is due and step it to the end of this pass (tests, benchmarks)."""
        claimed = await self._claim()
        async with self._stepping() as steps:
            for claim in claimed:
                self._in_flight += 1
                steps.start_soon(self._step, claim)
        return len(claimed)

    @asynccontextmanager
    async def _stepping(self) -> AsyncIterator[TaskGroup]:
        """A task group for steps, with the one heartbeat that keeps all their leases alive."""
        async with anyio.create_task_group() as beating:
            beating.start_soon(self._heartbeat)
            async with anyio.create_task_group() as steps:
                yield steps
            beating.cancel_scope.cancel()

    async def _claim(self) -> list[Claim]:
        free = self._config.concurrency - self._in_flight
        if free <= 0:
            # Every slot is busy: the step that frees one wakes the loop (see `_step`), so
            # due work waits for a slot and not for the idle timer.
            self._full = True
            return []
        try:
            return await self._jobs.claim_due(
                owner=self.owner,
                now=utcnow(),
                lease=self._config.lease,
                limit=free,
            )
        except Exception:
            log.exception("claim failed; retrying after a pause")
            return []

    async def _step(self, claim: Claim) -> None:
        held = _Held(claim, anyio.CancelScope())
        try:
            if self._limiter is not None and not await self._admitted(claim):
                return
            result = await self._held(held)
            if not result.released:
                await self._jobs.release(claim, next_check_at=result.next_check_at)
        except LeaseLost:
            log.info("lease lost; another holder or a user moved the video", video=claim.video_id)
        except ProviderError as error:
            await self._retry_later(claim, seconds=error.retry_after or 5.0)
        except Exception:
            log.exception("step crashed", video=claim.video_id)
            await self._retry_later(claim, seconds=10.0)
        finally:
            self._in_flight -= 1
            if self._full or held.nudged:
                self._full = False
                self.wake()

    async def _held(self, held: _Held) -> StepResult:
        """Run the step while the heartbeat extends its lease; losing the lease stops the step."""
        self._holding.add(held)
        try:
            with held.scope:
                return await self._steps.run(held.claim)
        finally:
            self._holding.discard(held)
        raise LeaseLost(held.claim.video_id)  # reached only when the heartbeat cancelled the step

    async def _heartbeat(self) -> None:
        """Extend each held lease once a third of it has passed, checking six times a lease.

        One task for all steps: a task group and heartbeat task per step cost about 6% of the
        engine's CPU on SQLite. An extension leaves at least half the lease to run, so a
        database blip that fails one or two of them costs nothing.
        """
        lease = self._config.lease
        while True:
            await anyio.sleep(lease.total_seconds() / 6)
            threshold = utcnow() + lease * 2 / 3
            for held in [held for held in self._holding if held.claim.until <= threshold]:
                try:
                    held.claim = await self._jobs.extend(held.claim, now=utcnow(), lease=lease)
                except LeaseLost:
                    held.scope.cancel()
                except Exception:
                    log.exception("could not extend the lease", video=held.claim.video_id)

    async def _admitted(self, claim: Claim) -> bool:
        """Within the provider's rate limit (shared by every worker), or back off."""
        assert self._limiter is not None
        decision = await self._limiter.hit(f"provider:{self._provider_name}")
        if not decision.allowed:
            await self._retry_later(claim, seconds=float(decision.retry_after))
        return decision.allowed

    async def _retry_later(self, claim: Claim, *, seconds: float) -> None:
        try:
            await self._jobs.release(claim, next_check_at=utcnow() + timedelta(seconds=seconds))
        except Exception:
            log.exception("could not release; the lease will expire", video=claim.video_id)

    async def _idle(self) -> None:
        with anyio.move_on_after(self._config.idle_seconds):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _wake_when(self, stopping: anyio.Event) -> None:
        """Cut an idle wait short when the engine is told to stop (one task for the engine's
        life, not a task group per idle wait: the loop idles up to `1 / idle_seconds` times a
        second)."""
        await stopping.wait()
        self.wake()

    async def _every(self, every: Every) -> None:
        while True:
            try:
                await every.task()
            except Exception:
                log.exception("periodic task failed")
            await anyio.sleep(every.seconds)
