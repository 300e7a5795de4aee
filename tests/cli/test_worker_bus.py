"""`reelforge worker` with Redis listens on its installation's bus, where the API's notices (a
video accepted, a key revoked) reach it; without it, only its idle poll would find new work."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from reelforge.db import migrate
from tests.support.processes import START_SECONDS, worker_environment, workers_in

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


async def test_a_worker_subscribes_to_its_installations_bus(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    await migrate.upgrade(postgres_url)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    environment = worker_environment(
        database_url=postgres_url,
        storage_url=(tmp_path / "objects").as_uri(),
        provider_base_url="http://127.0.0.1:9/v1",  # nothing to make: never called
        data_dir=tmp_path,
    ) | {"REELFORGE_REDIS_URL": redis_url, "REELFORGE_REDIS_KEY_PREFIX": prefix}
    redis = Redis.from_url(redis_url)
    try:
        with workers_in(environment, tmp_path / "workers") as workers:
            worker = workers.start()
            with anyio.fail_after(START_SECONDS):
                while (await redis.pubsub_numsub(f"{prefix}:bus"))[0][1] == 0:
                    assert worker.process.poll() is None, workers.logs()
                    await anyio.sleep(0.05)
    finally:
        await redis.aclose()
