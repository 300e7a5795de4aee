"""Worker heartbeats on both databases, and `/ready`'s `workers` entry that reads them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from reelforge.api.app import create_app
from reelforge.db.engine import Database
from reelforge.db.models import WorkerHeartbeat
from reelforge.domain.clock import utcnow
from reelforge.runtime import Runtime
from reelforge.services.heartbeats import Heartbeats, WorkersSilentError

pytestmark = pytest.mark.anyio

MINUTE = timedelta(minutes=1)


async def test_no_beat_means_no_worker(database: Database) -> None:
    heartbeats = Heartbeats(database)

    assert await heartbeats.latest() is None
    with pytest.raises(WorkersSilentError, match="no worker has ever beaten"):
        await heartbeats.check(MINUTE)


async def test_the_latest_beat_of_any_worker_counts(database: Database) -> None:
    heartbeats = Heartbeats(database)
    before = utcnow()

    await heartbeats.beat("worker-a")
    await heartbeats.beat("worker-b")
    await heartbeats.beat("worker-a")

    latest = await heartbeats.latest()
    assert latest is not None
    assert latest >= before
    await heartbeats.check(MINUTE)


async def test_a_silence_longer_than_allowed_fails_the_check(database: Database) -> None:
    heartbeats = Heartbeats(database)
    await heartbeats.beat("worker-a")
    async with database.transaction() as connection:
        await connection.execute(
            update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(minutes=5))
        )

    with pytest.raises(WorkersSilentError, match=r"no worker seen for 3\d\d s"):
        await heartbeats.check(MINUTE)
    await heartbeats.check(timedelta(minutes=10))


async def test_ready_reports_workers_when_they_run_apart(make_settings: Any) -> None:
    app = create_app(make_settings(embedded_worker=False, worker_silence_seconds=60))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            silent = await client.get("/ready")
            runtime: Runtime = app.state.runtime
            await runtime.heartbeats.beat("worker-1")
            beating = await client.get("/ready")

    assert silent.status_code == 503
    workers = silent.json()["checks"]["workers"]
    assert workers["ok"] is False
    assert "reelforge worker" in workers["error"]
    assert beating.status_code == 200
    assert beating.json()["checks"]["workers"]["ok"] is True


async def test_the_embedded_worker_has_no_workers_entry(make_settings: Any) -> None:
    app = create_app(make_settings(embedded_worker=True, worker_silence_seconds=60))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/ready")

    assert "workers" not in ready.json()["checks"]
