"""Scale-out: a change made in one process (a `reelforge worker`) reaches socket.io and SSE
subscribers of another (`reelforge serve`), over PostgreSQL and the Redis bus."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from reelforge.db import migrate
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import RunningServer, running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.providers.registry import EMULATOR_API_KEY
from tests.support.processes import worker_environment, workers_in
from tests.support.serving import serve_environment, serving
from tests.support.sockets import node_sockets
from tests.support.sse import events

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    """The emulator on a socket of its own, as several processes share one upstream."""
    app = create_emulator_app(EmulatorSettings(poll_after_ms=0))
    with running(app) as server:
        yield server
    app.state.emulator.close()


async def test_a_workers_change_reaches_subscribers_of_another_process(
    postgres_url: str, redis_url: str, upstream: RunningServer, tmp_path: Path
) -> None:
    await migrate.upgrade(postgres_url)
    shared = {
        "database_url": postgres_url,
        "storage_url": (tmp_path / "objects").as_uri(),
        "redis_url": redis_url,
        "redis_key_prefix": f"test-{uuid.uuid4().hex[:12]}",
    }
    environment = serve_environment(
        tmp_path / "serve-data",
        embedded_worker="false",
        # The worker starts once the server answers: /ready is not to wait for it.
        worker_silence_seconds="",
        provider="openai",
        openai_base_url=upstream.base_url,
        openai_api_key=EMULATOR_API_KEY,
        **shared,
    )
    worker_env = worker_environment(
        database_url=postgres_url,
        storage_url=shared["storage_url"],
        provider_base_url=upstream.base_url,
        data_dir=tmp_path / "worker-data",
    ) | {
        "REELFORGE_REDIS_URL": redis_url,
        "REELFORGE_REDIS_KEY_PREFIX": shared["redis_key_prefix"],
    }
    async with serving(environment, tmp_path / "serve") as server, node_sockets() as sockets:
        ada = await server.user("ada@example.org")
        video_id = await server.create(ada, "made elsewhere [[latency=8]]")
        connected = await sockets.connect("ada", server.url, auth={"token": ada.key})
        assert connected["event"] == "connect", connected
        await sockets.subscribe("ada", video_id)
        async with (
            server.client(ada) as client,
            client.stream("GET", f"/api/videos/{video_id}/stream") as stream,
        ):
            received = events(stream)
            first = await anext(received)
            assert first.data["status"] == "queued"

            with workers_in(worker_env, tmp_path / "workers") as workers:
                workers.start()
                completed = await sockets.update_where(
                    "ada", lambda data: data.get("status") == "completed"
                )
                with anyio.fail_after(60):
                    async for event in received:
                        if event.data["status"] == "completed":
                            break
                await workers.started[0].stop()

        # Every state came from the worker's process: this one runs no engine.
        statuses = [update["status"] for update in sockets.updates("ada", video_id)]
        assert statuses[0] == "queued"
        assert "in_progress" in statuses
        assert completed == {"videoId": video_id, **await server.video(ada, video_id)}
        assert event.data == completed


async def test_the_connection_cap_counts_a_users_connections_in_every_process(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Two `reelforge serve` processes share PostgreSQL and Redis: a user's socket.io clients
    and SSE streams on both count against one cap, and a close on one frees a place on the
    other."""
    await migrate.upgrade(postgres_url)
    shared = {
        "database_url": postgres_url,
        "storage_url": (tmp_path / "objects").as_uri(),
        "redis_url": redis_url,
        "redis_key_prefix": f"test-{uuid.uuid4().hex[:12]}",
        "realtime_connections_per_user": "2",
    }
    one_env = serve_environment(tmp_path / "one-data", **shared)
    other_env = serve_environment(tmp_path / "other-data", embedded_worker="false", **shared)
    async with (
        serving(one_env, tmp_path / "one") as one,
        serving(other_env, tmp_path / "other") as other,
        node_sockets() as sockets,
    ):
        ada = await one.user("ada@example.org")
        bob = await one.user("bob@example.org")
        connected = await sockets.connect("ada-one", one.url, auth={"token": ada.key})
        assert connected["event"] == "connect", connected
        async with other.client(ada) as client:
            async with client.stream("GET", "/api/stream") as stream:
                assert stream.status_code == 200
                refused_here = await sockets.connect("ada-3", one.url, auth={"token": ada.key})
                refused_there = await client.get("/api/stream")
                bobs = await sockets.connect("bob", other.url, auth={"token": bob.key})

                assert refused_here["event"] == "connect_error"
                assert "at most 2 live-update connections" in refused_here["data"]
                assert refused_there.status_code == 429
                assert bobs["event"] == "connect"
            # The stream on `other` closed: its place is free for a socket on `one`.
            for attempt in range(200):
                again = await sockets.connect(f"again-{attempt}", one.url, auth={"token": ada.key})
                if again["event"] == "connect":
                    break
                await anyio.sleep(0.05)
            else:
                raise AssertionError("a closed stream's place was never freed")
