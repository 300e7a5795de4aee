"""A worker in another process starts a video's job when the API accepts it, woken over the
bus (PostgreSQL + Redis), not at its next idle poll."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi import FastAPI

from reelforge.db import migrate
from reelforge.db.claim import Claim
from reelforge.providers.registry import emulator_provider
from reelforge.runtime import Runtime, open_runtime
from reelforge.services.jobs import Jobs
from reelforge.services.videos import NewVideo
from reelforge.storage import open_storage
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.runner import woken_by
from tests.support.engine import steps_for, video_row

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


class WatchedJobs(Jobs):
    """The engine's job queries, telling when a claim has come back empty (the engine idles)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.idle = anyio.Event()

    async def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[Claim]:
        claims = await super().claim_due(owner=owner, now=now, lease=lease, limit=limit)
        if not claims:
            self.idle.set()
        return claims


@pytest.fixture
async def api_and_worker(
    postgres_url: str, redis_url: str, make_settings: Any
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two runtimes on one database and one bus, as `reelforge serve` (no embedded worker) and
    `reelforge worker` hold them."""
    await migrate.upgrade(postgres_url)
    settings = make_settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_key_prefix=f"test-{uuid.uuid4().hex[:12]}",
        embedded_worker=False,
    )
    async with AsyncExitStack() as stack:
        api, worker = open_runtime(settings), open_runtime(settings)
        for runtime in (api, worker):
            stack.push_async_callback(runtime.close)
            await runtime.listen(stack)
        yield api, worker


async def test_the_worker_takes_an_accepted_video_at_once(
    api_and_worker: tuple[Runtime, Runtime], upstream: FastAPI
) -> None:
    api, worker = api_and_worker
    provider = emulator_provider(upstream, timeout=10.0)
    jobs = WatchedJobs(worker.database)
    steps = steps_for(worker.database, open_storage("memory://"), provider)
    # Idle far longer than the test may take: only a wake-up can start a claim in time.
    engine = Engine(jobs, steps, config=EngineConfig(idle_seconds=3600), provider_name="emulator")
    worker.bus.observe(woken_by(engine))
    ada = await api.accounts.create("ada@example.org", "a-long-password-1")
    stopping = anyio.Event()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(engine.run, stopping)
            with anyio.fail_after(10):
                await jobs.idle.wait()
                while not worker.bus.connected:  # subscribed: no notice can slip past it
                    await anyio.sleep(0.01)
            view, _ = await api.videos.create(ada, NewVideo(prompt="a paper boat", size="1280x720"))
            with anyio.fail_after(10):
                while (await video_row(api.database, view.id)).provider_video_id is None:
                    await anyio.sleep(0.05)
            stopping.set()
            engine.wake()
    finally:
        await provider.aclose()
