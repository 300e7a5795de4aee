"""The job engine under faults, on each database: dead and paused workers, broken downloads,
upstream error bursts, cancels in flight and many videos on two engines. Every scenario ends
with the whole-system invariants (tests/support/invariants.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from reelforge.db.claim import Claim, LeaseLost, claim_due
from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video, VideoEvent
from reelforge.domain import catalog
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.providers.openai import OpenAIProvider
from reelforge.providers.registry import EMULATOR_API_KEY, emulator_provider
from reelforge.services.jobs import Jobs
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import Storage
from reelforge.worker.engine import Engine, EngineConfig
from tests.support.engine import run_until_settled, steps_for, tiny_renderer, video_row
from tests.support.invariants import check_invariants

pytestmark = pytest.mark.anyio

SHORT = timedelta(seconds=1)


@pytest.fixture
async def upstream() -> AsyncIterator[FastAPI]:
    app = create_emulator_app(EmulatorSettings(poll_after_ms=0), renderer=tiny_renderer)
    yield app
    app.state.emulator.close()


async def snapshot(database: Database, video_id: str) -> tuple[Any, ...]:
    async with database.session() as session:
        video = await session.get(Video, video_id)
        assert video is not None
        row = {c.key: getattr(video, c.key) for c in Video.__mapper__.column_attrs}
        events = (
            await session.scalars(select(VideoEvent.id).where(VideoEvent.video_id == video_id))
        ).all()
        money = (
            await session.scalars(select(LedgerEntry.id).where(LedgerEntry.video_id == video_id))
        ).all()
    return row, list(events), list(money)


async def dead_claim(database: Database, video_id: str) -> Claim:
    """What a worker holds when it is SIGKILLed: a lease nobody will ever release."""
    claims = await claim_due(database, owner="doomed", now=utcnow(), lease=SHORT, limit=100)
    mine = [claim for claim in claims if claim.video_id == video_id]
    assert mine, "the video was not due"
    return mine[0]


# --- crashed and paused workers ---------------------------------------------------------


async def test_a_worker_killed_holding_a_lease_is_taken_over_after_it_expires(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="an orphaned job"))
    claim = await dead_claim(database, view.id)
    # While the lease holds, nobody else may take it.
    assert await claim_due(database, owner="x", now=utcnow(), lease=SHORT, limit=10) == []

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    assert video.lease_version > claim.version
    await check_invariants(database, storage, upstream)


async def test_a_worker_killed_during_a_create_is_reconciled_not_created_twice(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="killed mid-create [[late-create=2]]"))
    claim = await dead_claim(database, view.id)
    provider = emulator_provider(upstream, timeout=10)
    steps = steps_for(database, storage, provider)
    try:
        # The create reaches upstream; the worker dies before its (late) answer arrives.
        async with anyio.create_task_group() as worker:
            worker.start_soon(steps.run, claim)
            with anyio.fail_after(10):
                while not list(upstream.state.emulator.store.ledger_rows()):
                    await anyio.sleep(0.01)
            worker.cancel_scope.cancel()
    finally:
        await provider.aclose()
    assert (await video_row(database, view.id)).job_state == "submitting"
    assert len(list(upstream.state.emulator.store.ledger_rows())) == 1

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    assert [r["id"] for r in upstream.state.emulator.store.ledger_rows()] == [
        video.provider_video_id
    ]
    await check_invariants(database, storage, upstream)


async def test_a_paused_worker_that_resumes_after_losing_its_lease_changes_nothing(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a long pause"))
    stale = await dead_claim(database, view.id)
    await anyio.sleep(SHORT.total_seconds() + 0.2)  # paused (GC, SIGSTOP) past the lease

    await run_until_settled([make_engine()], database)
    before = await snapshot(database, view.id)
    jobs_before = list(upstream.state.emulator.store.ledger_rows())

    provider = emulator_provider(upstream)
    try:
        steps = steps_for(database, storage, provider)
        with pytest.raises(LeaseLost):
            await steps.run(stale)
    finally:
        await provider.aclose()

    assert await snapshot(database, view.id) == before
    assert list(upstream.state.emulator.store.ledger_rows()) == jobs_before
    assert before[0]["job_state"] == "completed"
    await check_invariants(database, storage, upstream)


# --- downloads ------------------------------------------------------------------------


def socket_engine(
    database: Database, storage: Storage, base_url: str, *, lease: timedelta
) -> tuple[Engine, OpenAIProvider]:
    """An engine talking to the emulator over a real socket (truncation and throttling show)."""
    provider = OpenAIProvider(
        spec=catalog.provider("emulator"), api_key=EMULATOR_API_KEY, base_url=base_url, timeout=10
    )
    steps = steps_for(database, storage, provider)
    config = EngineConfig(concurrency=4, lease=lease, idle_seconds=0.05)
    return Engine(Jobs(database), steps, config=config, provider_name=provider.name), provider


@pytest.mark.parametrize("transport", ["in-process", "socket"])
async def test_truncated_downloads_are_retried_and_never_archived_short(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    make_engine: Any,
    transport: str,
) -> None:
    # Every download is cut in half until upstream expires the output (ttl 3 s).
    view, _ = await videos.create(ada, NewVideo(prompt="half a film [[truncate=0.5]] [[ttl=3]]"))
    if transport == "socket":
        with running(upstream) as server:
            engine, provider = socket_engine(database, storage, server.base_url, lease=SHORT * 30)
            try:
                await run_until_settled([engine], database)
            finally:
                await provider.aclose()
    else:
        await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "expired", video.last_error
    assert video.video_key is None
    assert video.archive_failures >= 1
    assert not await storage.exists(f"videos/{view.id}/video.mp4")
    downloads = upstream.state.emulator.stats.snapshot()["calls"].get("videos.content", 0)
    assert downloads >= 2
    await check_invariants(database, storage, upstream)


@pytest.mark.parametrize(
    "lease",
    [
        pytest.param(SHORT * 30, id="within-lease"),
        pytest.param(SHORT, id="longer-than-lease"),
    ],
)
async def test_a_slow_download_is_archived_once(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    lease: timedelta,
) -> None:
    # ~8.3 KiB at 4 KiB/s: about two seconds (twice the short lease).
    view, _ = await videos.create(ada, NewVideo(prompt="slowly now [[slow-download=4096]]"))
    with running(upstream) as server:
        engine, provider = socket_engine(database, storage, server.base_url, lease=lease)
        try:
            with anyio.move_on_after(12):
                await run_until_settled([engine], database, seconds=60)
        finally:
            await provider.aclose()

    # Each of the three variants downloaded once: a re-claimed step re-downloads everything.
    downloads = upstream.state.emulator.stats.snapshot()["calls"].get("videos.content", 0)
    assert downloads == 3, f"{downloads} downloads for 3 variants"
    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    await check_invariants(database, storage, upstream)


# --- upstream errors, cancels, load -------------------------------------------------------


async def test_a_burst_of_5xx_on_retrieve_is_ridden_out(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    upstream.state.emulator.faults.update(
        {"error_burst": 3, "error_status": 502, "error_routes": ["videos.retrieve"]}
    )
    view, _ = await videos.create(ada, NewVideo(prompt="through the storm"))

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    statuses = upstream.state.emulator.stats.snapshot()["statuses"]["videos.retrieve"]
    assert statuses.get("502") == 3
    await check_invariants(database, storage, upstream)


async def test_a_cancel_in_progress_settles_once_and_deletes_the_upstream_job(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="never mind [[latency=3]]"))
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(make_engine().run, stopping)
        with anyio.fail_after(20):
            while (await video_row(database, view.id)).provider_video_id is None:
                await anyio.sleep(0.05)
        await videos.cancel(ada, view.id)
        await videos.cancel(ada, view.id)  # twice: still one settle
        with anyio.move_on_after(30):
            while not _deleted_upstream(upstream):
                await anyio.sleep(0.1)
        stopping.set()

    video = await video_row(database, view.id)
    assert video.job_state == "cancelled"
    assert _deleted_upstream(upstream), "the cancelled video's upstream job was never deleted"
    await check_invariants(database, storage, upstream)


async def test_a_cancel_in_progress_settles_once_and_stops_the_engine(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    """One settle, the video stays cancelled, nothing archived (the upstream clean-up may
    still be pending: see the next test)."""
    view, _ = await videos.create(ada, NewVideo(prompt="never mind [[latency=3]]"))
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(make_engine().run, stopping)
        with anyio.fail_after(20):
            while (await video_row(database, view.id)).provider_video_id is None:
                await anyio.sleep(0.05)
        await videos.cancel(ada, view.id)
        await videos.cancel(ada, view.id)
        await anyio.sleep(4)  # past upstream's completion: the engine must not archive it
        stopping.set()

    video = await video_row(database, view.id)
    assert video.job_state == "cancelled"
    assert video.video_key is None
    async with database.session() as session:
        kinds = (
            await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.video_id == view.id))
        ).all()
    assert sorted(kinds) == ["reserve", "settle"]
    await check_invariants(database, storage, upstream)


def _deleted_upstream(app: FastAPI) -> bool:
    rows = list(app.state.emulator.store.ledger_rows())
    return bool(rows) and all(row["deleted"] for row in rows)


async def test_many_videos_on_two_engines_at_once(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    tags = ["", "", "", "[[fail]]", "[[429=1]]", "[[5xx=1]]", "[[late-create=1]]", ""]
    ids = [
        (await videos.create(ada, NewVideo(prompt=f"crowd {i} {tags[i % len(tags)]}")))[0].id
        for i in range(24)
    ]
    engines = [make_engine(timeout=0.5, concurrency=6), make_engine(timeout=0.5, concurrency=6)]

    await run_until_settled(engines, database, seconds=120)

    states = [(await video_row(database, video_id)).job_state for video_id in ids]
    assert states.count("failed") == 3
    assert states.count("completed") == 21
    await check_invariants(database, storage, upstream)
