"""The job engine when its surroundings fail: connections reset mid-call, Redis dies, the disk
fills up, every provider webhook is lost, and webhooks arrive doubled, late, replayed or forged.
Every engine scenario runs on each database and ends with the whole-system invariants."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from reelforge.api.app import create_app
from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video, WebhookDelivery, WebhookReceipt
from reelforge.domain import catalog
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.webhooks import WebhookSender
from reelforge.providers.base import Provider
from reelforge.providers.openai import OpenAIProvider
from reelforge.providers.registry import EMULATOR_API_KEY, emulator_provider
from reelforge.services.jobs import Jobs
from reelforge.services.ratelimits import RateLimiter, limiter_storage
from reelforge.services.videos import NewVideo, Videos
from reelforge.settings import Settings
from reelforge.storage import Storage, open_storage
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.runner import woken_by
from reelforge.worker.steps import WEBHOOK_SAFETY_POLL
from tests.support.api import BASE_URL, callers, runtime_of
from tests.support.engine import event_kinds, steps_for, tiny_renderer, upstream_jobs, video_row
from tests.support.invariants import check_invariants
from tests.support.proxy import fault_proxy
from tests.support.redis_server import redis_server
from tests.support.tmpfs import tmpfs
from tests.support.webhooks import OTHER_SECRET, SECRET, Receiver, receiving, signed

pytestmark = pytest.mark.anyio

HOOK = "/webhooks/emulator"
# Generous: each scenario settles in a few seconds; this only bounds a hang.
EVENTUALLY = 60.0


TINY_VIDEO_BYTES = 12 + 32 * 256  # 8 KiB and a bit: three tmpfs pages
PAGE = 4096


@pytest.fixture
def emulator_settings() -> EmulatorSettings:
    return EmulatorSettings(poll_after_ms=0)


@pytest.fixture
async def upstream(emulator_settings: EmulatorSettings) -> AsyncIterator[FastAPI]:
    app = create_emulator_app(emulator_settings, renderer=tiny_renderer)
    yield app
    app.state.emulator.close()


def build_engine(
    database: Database,
    storage: Storage,
    provider: Provider,
    *,
    webhooks: bool = False,
    limiter: RateLimiter | None = None,
) -> Engine:
    steps = steps_for(database, storage, provider, webhooks=webhooks)
    config = EngineConfig(concurrency=4, lease=timedelta(seconds=30), idle_seconds=0.05)
    return Engine(
        Jobs(database), steps, config=config, provider_limiter=limiter, provider_name=provider.name
    )


async def eventually(check: Callable[[], Any], what: str, seconds: float = EVENTUALLY) -> None:
    """Wait until the (async) `check` is truthy; fail saying `what` never happened."""
    with anyio.move_on_after(seconds):
        while not await check():
            await anyio.sleep(0.05)
        return
    # An AssertionError, not pytest.fail: the latter is a BaseException, which a task group
    # wraps in a BaseExceptionGroup that pytest reports badly.
    raise AssertionError(f"not within {seconds} s: {what}")


async def states(database: Database, ids: list[str]) -> list[str]:
    return [(await video_row(database, video_id)).job_state for video_id in ids]


async def all_in(database: Database, ids: list[str], state: str) -> bool:
    return all(s == state for s in await states(database, ids))


async def make_due(database: Database, video_id: str) -> None:
    """What time passing does to a video waiting for its next check: it becomes due."""
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(next_check_at=utcnow() - timedelta(seconds=1))
        )


# --- 1. connections reset by the network ------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "count", "after_forwarding"),
    [
        # Upstream never sees these polls; the engine backs off and asks again.
        pytest.param(r"^GET /v1/videos/video_\w+$", 3, False, id="polls-reset"),
        # The create reaches upstream and only its answer is lost: reconcile, never create twice.
        pytest.param(r"^POST /v1/videos$", 1, True, id="create-answer-lost"),
        # Downloads cut as the body starts: nothing short is archived, the archive is retried.
        pytest.param(r"^GET /v1/videos/video_\w+/content", 2, True, id="download-reset"),
    ],
)
async def test_connection_resets_are_ridden_out(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    pattern: str,
    count: int,
    after_forwarding: bool,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="over a flaky network [[latency=1]]"))
    with running(upstream) as server:
        async with fault_proxy(server.host, server.port) as proxy:
            proxy.reset_next(pattern, count, after_forwarding=after_forwarding)
            provider = OpenAIProvider(
                spec=catalog.provider("emulator"),
                api_key=EMULATOR_API_KEY,
                base_url=f"{proxy.root}/v1",
                timeout=10,
            )
            try:
                engine = build_engine(database, storage, provider)
                stopping = anyio.Event()
                async with anyio.create_task_group() as group:
                    group.start_soon(engine.run, stopping)
                    await eventually(
                        lambda: all_in(database, [view.id], "completed"), "the video completed"
                    )
                    stopping.set()
            finally:
                await provider.aclose()

    # What went over the wire, for the message of whichever assertion fails.
    seen = {"reset": proxy.resets, "requests": proxy.requests, "jobs": upstream_jobs(upstream)}
    assert len(proxy.resets) == count, seen
    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    assert video.last_error is None
    assert [row["id"] for row in upstream_jobs(upstream)] == [video.provider_video_id], seen
    assert (await event_kinds(database, view.id)).count("submitted") == 1, seen
    await check_invariants(database, storage, upstream)


# --- 2. Redis down ------------------------------------------------------------------------


async def redis_keys(url: str) -> int:
    async with Redis.from_url(url) as client:
        return len([key async for key in client.scan_iter("test:limits*")])


async def test_the_engine_keeps_working_while_its_rate_limit_redis_is_down(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    tmp_path: Path,
) -> None:
    """The provider limit falls back to this worker's own count: pausing every job until Redis
    returns would let finished outputs expire upstream (lost, paid-for videos); upstream's 429s,
    which the engine honours, still bound a fleet that over-counts for a while."""
    ids = [
        (await videos.create(ada, NewVideo(prompt=f"redis outage {i} [[latency=2]]")))[0].id
        for i in range(3)
    ]
    with redis_server(tmp_path) as server:
        client = Redis.from_url(server.url)
        limiter = RateLimiter("1000/minute", limiter_storage(client, "test"), scope="upstream")
        provider = emulator_provider(upstream, timeout=10)
        try:
            engine = build_engine(database, storage, provider, limiter=limiter)
            stopping = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(engine.run, stopping)

                async def submitted() -> bool:
                    rows = [await video_row(database, video_id) for video_id in ids]
                    return all(row.provider_video_id for row in rows)

                await eventually(submitted, "all videos were submitted")
                assert await redis_keys(server.url) > 0, "the count was never shared"
                server.kill()
                # Upstream is still rendering (2 s): the rest happens with Redis gone.
                assert not await all_in(database, ids, "completed")
                await eventually(
                    lambda: all_in(database, ids, "completed"), "videos completed without Redis"
                )
                assert limiter.degraded

                server.start()  # back, and empty (no persistence)
                late, _ = await videos.create(ada, NewVideo(prompt="after the outage"))
                engine.wake()
                await eventually(lambda: all_in(database, [late.id], "completed"), "late video")
                stopping.set()
        finally:
            await provider.aclose()
            await client.aclose()
        assert not limiter.degraded
        assert await redis_keys(server.url) > 0, "counting did not go back to Redis"

    for video_id in ids:
        video = await video_row(database, video_id)
        assert video.last_error is None
        assert (await event_kinds(database, video_id)).count("archived") == 1
    await check_invariants(database, storage, upstream)


async def test_creates_are_limited_per_process_while_redis_is_down(
    make_settings: Any, tmp_path: Path
) -> None:
    """The create limit fails open to a count in this process (with a warning): no 500, no
    hang, and still a limit, rather than refusing every create while Redis is away."""
    with redis_server(tmp_path) as server:
        settings: Settings = make_settings(
            embedded_worker=False, redis_url=server.url, create_rate_limit="2/minute"
        )
        application = create_app(settings)
        async with LifespanManager(application), AsyncExitStack() as stack:
            make = await callers(application, stack)
            ada = await make("ada@example.org")

            async def create(prompt: str) -> httpx.Response:
                with anyio.fail_after(15):  # the limiter must not wait on a dead Redis
                    return await ada.client.post("/api/videos", json={"prompt": prompt})

            shared = await create("while Redis is up")
            assert shared.status_code == 201, shared.text
            async with Redis.from_url(server.url) as probe:
                assert [key async for key in probe.scan_iter("reelforge:limits*")]

            server.kill()  # refused connections
            statuses = [(await create(f"Redis down {i}")).status_code for i in range(3)]
            # The local count starts empty: two more fit the 2/minute window, the third doesn't.
            assert statuses == [201, 201, 429]
            refused = await create("still down")
            assert refused.status_code == 429
            assert refused.json()["code"] == "rate_limit_exceeded"
            assert int(refused.headers["Retry-After"]) >= 1

            server.start()
            server.pause()  # accepts connections, never answers: a partition or a hung node
            try:
                hung = await create("Redis hung")
            finally:
                server.resume()
            assert hung.status_code == 429, hung.text  # the local window is still full

            listed = await ada.client.get("/api/videos")
            assert listed.status_code == 200
            assert len(listed.json()["data"]) == 3


# --- 3. disk full -------------------------------------------------------------------------


async def temporaries(storage: Storage) -> list[str]:
    return [info.key async for info in storage.list("tmp")]


async def test_a_full_disk_fails_the_archive_cleanly_and_it_completes_once_space_is_freed(
    videos: Videos,
    ada: Account,
    database: Database,
    upstream: FastAPI,
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "256k") as disk:
        storage = open_storage((disk.path / "objects").as_uri())
        await storage.put("probe", b"the store works")  # creates the root before the disk fills
        filler = disk.fill()
        view, _ = await videos.create(ada, NewVideo(prompt="no room for this"))
        provider = emulator_provider(upstream, timeout=10)
        try:
            engine = build_engine(database, storage, provider)
            stopping = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(engine.run, stopping)

                async def failed_twice() -> bool:
                    video = await video_row(database, view.id)
                    return video.archive_failures >= 2

                await eventually(failed_twice, "the archive was tried twice on a full disk")
                video = await video_row(database, view.id)
                assert video.job_state == "downloading"
                assert "No space left on device" in (video.last_error or "")
                assert video.video_key is None
                assert video.archived_at is None
                assert video.next_check_at is not None, "a failed archive must be retried"
                assert not await storage.exists(f"videos/{view.id}/video.mp4")
                assert await temporaries(storage) == [], "a failed write left a temporary"
                assert (await event_kinds(database, view.id)).count("archived") == 0

                filler.unlink()
                await make_due(database, view.id)  # skip the backoff instead of sleeping it
                await eventually(
                    lambda: all_in(database, [view.id], "completed"), "completed after freeing"
                )
                stopping.set()
        finally:
            await provider.aclose()

        video = await video_row(database, view.id)
        assert video.last_error is None
        stored = await storage.read(f"videos/{view.id}/video.mp4")
        assert hashlib.sha256(stored).hexdigest() == video.video_sha256
        assert await temporaries(storage) == []
        await check_invariants(database, storage, upstream)


def png(width: int, height: int) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_reference_upload_to_a_full_disk_is_507_and_accepts_nothing(
    make_settings: Any, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", "512k") as disk:
        settings: Settings = make_settings(
            embedded_worker=False, storage_url=(disk.path / "objects").as_uri()
        )
        application = create_app(settings)
        async with LifespanManager(application), AsyncExitStack() as stack:
            make = await callers(application, stack)
            ada = await make("ada@example.org")
            await runtime_of(application).storage.put("probe", b"the store works")
            filler = disk.fill()
            image = png(1280, 720)

            guide = await ada.client.post(
                "/api/videos",
                data={"prompt": "a fox", "size": "1280x720"},
                files={"input_reference": ("first.png", image, "image/png")},
            )
            assert guide.status_code == 507, guide.text
            assert guide.json() == {
                "success": False,
                "error": guide.json()["error"],
                "code": "storage_full",
                "field": None,
            }
            assert isinstance(guide.json()["error"], str)
            assert "/" not in guide.json()["error"], "no paths leak to callers"

            data_url = "data:image/png;base64," + base64.b64encode(image).decode()
            protocol = await ada.client.post(
                "/v1/videos",
                json={
                    "prompt": "a fox",
                    "size": "1280x720",
                    "input_reference": {"image_url": data_url},
                },
            )
            assert protocol.status_code == 507, protocol.text
            error = protocol.json()["error"]
            assert (error["type"], error["code"]) == ("server_error", "storage_full")

            listed = await ada.client.get("/api/videos")
            assert listed.json()["data"] == [], "a failed upload must accept no video"
            async with runtime_of(application).database.session() as session:
                assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0

            filler.unlink()
            accepted = await ada.client.post(
                "/api/videos",
                data={"prompt": "a fox", "size": "1280x720"},
                files={"input_reference": ("first.png", image, "image/png")},
            )
            assert accepted.status_code == 201, accepted.text


# --- 4. every webhook lost ----------------------------------------------------------------


@pytest.fixture
def lost_webhooks() -> EmulatorSettings:
    return EmulatorSettings(
        poll_after_ms=0,
        webhook_url="http://127.0.0.1:9/never",
        webhook_secret=SECRET,
        drop_webhooks=True,
    )


async def test_when_every_webhook_is_lost_the_safety_poll_finishes_the_video(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    lost_webhooks: EmulatorSettings,
) -> None:
    upstream = create_emulator_app(lost_webhooks, renderer=tiny_renderer)
    provider = emulator_provider(upstream, timeout=10)
    try:
        view, _ = await videos.create(ada, NewVideo(prompt="nobody will tell us"))
        engine = build_engine(database, storage, provider, webhooks=True)
        stopping = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(engine.run, stopping)

            async def finished_upstream() -> bool:
                deliveries = upstream.state.emulator.webhooks.deliveries()
                return any(d["type"] == "video.completed" for d in deliveries)

            await eventually(finished_upstream, "upstream finished the job")
            await anyio.sleep(0.5)  # a nudge, had there been one, would have been acted on
            video = await video_row(database, view.id)
            assert video.job_state != "completed"
            assert [d["state"] for d in upstream.state.emulator.webhooks.deliveries()] == [
                "dropped"
            ]
            # What is left is the safety poll, a minute out (less whatever time has passed).
            assert video.next_check_at is not None
            assert _as_utc(video.next_check_at) > utcnow() + WEBHOOK_SAFETY_POLL / 2
            retrieves_before = _calls(upstream, "videos.retrieve")

            await make_due(database, view.id)  # the minute passes
            await eventually(lambda: all_in(database, [view.id], "completed"), "safety poll")
            stopping.set()
        # In webhook mode nothing polls until the safety poll: it took one retrieve to finish.
        assert retrieves_before == 0
        assert _calls(upstream, "videos.retrieve") == 1
        await check_invariants(database, storage, upstream)
    finally:
        await provider.aclose()
        upstream.state.emulator.close()


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _calls(upstream: FastAPI, route: str) -> int:
    return int(upstream.state.emulator.stats.snapshot()["calls"].get(route, 0))


# --- 5. duplicate, out-of-order, replayed and forged webhooks -----------------------------


@pytest.fixture
def settings(make_settings: Any, migrated_url: str) -> Settings:
    """The API on each database, receiving the emulator's webhooks; the engine is the test's."""
    configured: Settings = make_settings(
        embedded_worker=False, provider_webhook_secret=SECRET, database_url=migrated_url
    )
    return configured


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def sender() -> WebhookSender:
    """Builds and signs events exactly as the emulator (and OpenAI) does."""
    return WebhookSender(EmulatorSettings(webhook_url="http://unused", webhook_secret=SECRET))


def event(kind: str, upstream_id: str) -> tuple[bytes, dict[str, str]]:
    """A correctly signed event the provider never sent (an early or stale one)."""
    webhooks = sender()
    delivery = webhooks.prepare(kind, upstream_id, int(utcnow().timestamp()), drop=False)
    return delivery.body.encode(), webhooks.headers(delivery)


async def test_duplicate_late_replayed_and_forged_webhooks_complete_each_video_once(
    app: FastAPI, webhook_receiver: Receiver
) -> None:
    runtime = runtime_of(app)
    database, storage = runtime.database, runtime.storage
    upstream = create_emulator_app(
        EmulatorSettings(poll_after_ms=0, webhook_url=webhook_receiver.url, webhook_secret=SECRET),
        renderer=tiny_renderer,
    )
    provider = emulator_provider(upstream, timeout=10)
    transport = httpx.ASGITransport(app=app)
    try:
        async with AsyncExitStack() as stack:
            hooks = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            )
            make = await callers(app, stack)
            ada = await make("ada@example.org")
            endpoint = await ada.client.post(
                "/api/webhooks/endpoints", json={"url": "https://example.org/hook"}
            )
            assert endpoint.status_code == 201, endpoint.text

            engine = build_engine(database, storage, provider, webhooks=True)
            runtime.bus.observe(woken_by(engine))
            ids = []
            for i in range(2):
                response = await ada.client.post(
                    "/api/videos", json={"prompt": f"storm {i} [[latency=2]]"}
                )
                assert response.status_code == 201, response.text
                ids.append(response.json()["data"]["id"])

            stopping = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(engine.run, stopping)

                async def submitted() -> bool:
                    rows = [await video_row(database, video_id) for video_id in ids]
                    return all(
                        row.provider_video_id and row.job_state != "submitting" for row in rows
                    )

                await eventually(submitted, "both videos were submitted")
                first = (await video_row(database, ids[0])).provider_video_id
                assert first is not None

                # Out of order: "completed" while upstream is still rendering. It only makes
                # the engine look early; upstream says in progress, the video waits on.
                body, headers = event("video.completed", first)
                early = await hooks.post(HOOK, content=body, headers=headers)
                assert early.status_code == 200, early.text
                await anyio.sleep(0.5)
                assert (await video_row(database, ids[0])).job_state != "completed"

                # Forged (someone else's key) and a stale "failed" for a running job.
                body, headers = event("video.failed", first)
                forged = await hooks.post(
                    HOOK, content=body, headers=signed(body.decode(), secret=OTHER_SECRET)
                )
                assert forged.status_code == 400
                stale = await hooks.post(HOOK, content=body, headers=headers)
                assert stale.status_code == 200

                # The provider's real deliveries, captured by the relay, go out doubled, in
                # reverse order, the copies of each at the same moment.
                async def both_sent() -> bool:
                    return len(webhook_receiver.received) >= 2

                await eventually(both_sent, "upstream sent both webhooks")
                real = list(reversed(webhook_receiver.received))
                answers: list[httpx.Response] = []

                async def deliver(headers: dict[str, str], body: bytes) -> None:
                    answers.append(await hooks.post(HOOK, content=body, headers=headers))

                for headers, body in real:
                    async with anyio.create_task_group() as copies:
                        copies.start_soon(deliver, headers, body)
                        copies.start_soon(deliver, headers, body)
                assert [a.status_code for a in answers] == [200] * 4
                duplicates = [a.json()["data"]["duplicate"] for a in answers]
                assert sorted(duplicates) == [False, False, True, True]

                # Far under the one-minute safety poll: the webhooks, not a poll, finished them.
                await eventually(lambda: all_in(database, ids, "completed"), "done", seconds=20)

                # A replay of a real delivery ten minutes on: refused by its timestamp.
                headers, body = real[0]
                text = body.decode()
                replayed = signed(
                    text, at=utcnow() - timedelta(minutes=10), webhook_id=headers["webhook-id"]
                )
                assert (await hooks.post(HOOK, content=body, headers=replayed)).status_code == 400
                # And one more late copy of a real delivery after the video is done.
                late = await hooks.post(HOOK, content=body, headers=headers)
                assert late.json()["data"]["duplicate"] is True
                stopping.set()

        for video_id in ids:
            kinds = await event_kinds(database, video_id)
            assert kinds.count("archived") == 1, kinds
            assert kinds.count("submitted") == 1, kinds
        async with database.session() as session:
            completed = (
                await session.scalars(
                    select(WebhookDelivery.video_id).where(
                        WebhookDelivery.event_type == "video.completed"
                    )
                )
            ).all()
            receipts = await session.scalar(select(func.count()).select_from(WebhookReceipt))
        assert sorted(str(v) for v in completed) == sorted(ids), (
            "each video.completed goes out exactly once"
        )
        # The early, the stale and the two real ones; no forged, replayed or duplicate copy.
        assert receipts == 4
        await check_invariants(database, storage, upstream)
    finally:
        await provider.aclose()
        upstream.state.emulator.close()


async def test_a_disk_that_fills_between_variants_loses_no_variant_for_good(
    videos: Videos,
    ada: Account,
    database: Database,
    upstream: FastAPI,
    tmp_path: Path,
) -> None:
    """Room for the video but not its thumbnail: a full disk is our transient fault, not a
    variant upstream lacks, so the archive must be retried rather than completed without it."""
    with tmpfs(tmp_path / "disk", "256k") as disk:
        storage = open_storage((disk.path / "objects").as_uri())
        await storage.put("probe", b"the store works")
        filler = disk.fill()
        view, _ = await videos.create(ada, NewVideo(prompt="room for one"))
        # Free just the pages the video needs: it fits, the thumbnail after it does not.
        pages = -(-TINY_VIDEO_BYTES // PAGE)
        with filler.open("r+b") as handle:
            handle.truncate(filler.stat().st_size - pages * PAGE)
        provider = emulator_provider(upstream, timeout=10)
        try:
            engine = build_engine(database, storage, provider)
            stopping = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(engine.run, stopping)

                async def settled() -> bool:
                    video = await video_row(database, view.id)
                    return video.job_state == "completed" or (video.archive_failures >= 1)

                await eventually(settled, "the archive ran into the full disk")
                filler.unlink()
                await make_due(database, view.id)
                await eventually(lambda: all_in(database, [view.id], "completed"), "completed")
                stopping.set()
        finally:
            await provider.aclose()

        video = await video_row(database, view.id)
        assert video.video_key is not None
        assert video.thumbnail_key is not None, "the thumbnail was dropped for a full disk"
        assert video.spritesheet_key is not None, "the spritesheet was dropped for a full disk"
        await check_invariants(database, storage, upstream)
