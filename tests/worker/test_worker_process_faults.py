"""Real `reelforge worker` processes killed, drained and cut off from PostgreSQL mid-job."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, select

from reelforge.bus import LocalBus
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain import catalog
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.states import JobState
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import EventKind
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.faults import parse_tags
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.emulator.server import RunningServer, running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.services.housekeeping import Housekeeping
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import Storage, open_storage
from tests.support.engine import event_kinds, tiny_assets, video_row
from tests.support.hanging_commit import MARKER_ENV
from tests.support.invariants import check_invariants
from tests.support.processes import (
    DRAIN_SECONDS,
    HANGING_COMMIT,
    LEASE_SECONDS,
    START_SECONDS,
    Workers,
    worker_environment,
    workers_in,
)

pytestmark = pytest.mark.anyio

# The video variant is ~16 KiB: about four seconds at this pace, long enough to kill or
# signal a worker while it is surely in the middle of the download.
SLOW_BPS = 4096
# A killed worker's video waits out the lease before a fresh worker may take it over.
TAKEOVER_SECONDS = START_SECONDS + LEASE_SECONDS
# The worker's own housekeeping uses the default TTL; so does ours.
TEMPORARY_TTL = timedelta(minutes=60)


def slow_enough_assets(prompt: str) -> RenderedAssets:
    """16 KiB videos: at SLOW_BPS a download lasts ~4 s, time to signal the worker mid-stream."""
    return tiny_assets(prompt, video_blocks=512)


def renderer(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
    if progress is not None:
        progress(1.0)
    return slow_enough_assets(spec.prompt)


@pytest.fixture
async def upstream() -> AsyncIterator[FastAPI]:
    """The emulator lives in the test process, so the test can read its ledger and steer it."""
    app = create_emulator_app(EmulatorSettings(poll_after_ms=0), renderer=renderer)
    yield app
    app.state.emulator.close()


@pytest.fixture
def server(upstream: FastAPI) -> Iterator[RunningServer]:
    with running(upstream) as serving:
        yield serving


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    """Local storage both the test and the worker processes open."""
    return open_storage((tmp_path / "objects").as_uri())


@pytest.fixture
def videos(database: Database, storage: Storage) -> Videos:
    # The workers run REELFORGE_PROVIDER=openai against the emulator, as the API would too.
    lifecycle = Lifecycle(database, LocalBus())
    return Videos(database, storage, catalog.provider("openai"), lifecycle, max_prompt_length=1000)


@pytest.fixture
def workers(
    migrated_url: str, storage: Storage, server: RunningServer, tmp_path: Path
) -> Iterator[Workers]:
    environment = worker_environment(
        database_url=migrated_url,
        storage_url=storage.url,
        provider_base_url=server.base_url,
        data_dir=tmp_path / "worker-data",
    )
    with workers_in(environment, tmp_path / "workers") as started:
        yield started


# --- reading the outcome --------------------------------------------------------------------


def content_calls(upstream: FastAPI) -> int:
    """Downloads upstream has started answering (counted when the response starts)."""
    calls: dict[str, int] = upstream.state.emulator.stats.snapshot()["calls"]
    return calls.get("videos.content", 0)


def holder_pid(video: Video) -> int | None:
    """The pid in the lease owner (`host:pid:nonce`), i.e. which process holds the video."""
    if video.lease_owner is None:
        return None
    return int(video.lease_owner.rsplit(":", 2)[1])


async def state_of(database: Database, video_id: str) -> str:
    return (await video_row(database, video_id)).job_state


async def assert_archived_whole(storage: Storage, video: Video) -> None:
    """Every variant is archived under its key, byte for byte what upstream rendered."""
    expected = slow_enough_assets(parse_tags(video.prompt).text)
    for variant in Variant:
        key = getattr(video, f"{variant.value}_key")
        data: bytes = getattr(expected, variant.value)
        assert key is not None, f"{video.id}: {variant} not archived"
        stored = await storage.read(key)
        assert len(stored) == len(data), f"{key}: {len(stored)} of {len(data)} bytes"
        assert stored == data, f"{key} holds other bytes than upstream's"
        assert getattr(video, f"{variant.value}_bytes") == len(data)
        assert getattr(video, f"{variant.value}_sha256") == hashlib.sha256(data).hexdigest()


async def archived_keys(database: Database) -> set[str]:
    async with database.session() as session:
        rows = await session.scalars(select(Video))
        return {
            key
            for video in rows
            for variant in Variant
            if (key := getattr(video, f"{variant.value}_key")) is not None
        }


async def temporaries(storage: Storage) -> set[str]:
    return {info.key async for info in storage.list("tmp")}


def files_under(root: Path) -> set[str]:
    """Every file on disk, including any a store hides from its listing (staged uploads)."""
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


async def assert_store_holds_only_archives(database: Database, storage: Storage) -> None:
    """The store holds the committed archives and nothing else: no short or stray object."""
    assert {info.key async for info in storage.list()} == await archived_keys(database)


# --- SIGKILL mid-download -------------------------------------------------------------------


async def test_a_worker_killed_mid_download_is_finished_by_a_fresh_one(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    workers: Workers,
    tmp_path: Path,
) -> None:
    upstream.state.emulator.faults.update({"slow_download_bps": SLOW_BPS})
    view, _ = await videos.create(ada, NewVideo(prompt="killed in the middle of a download"))
    doomed = workers.start()

    async def downloading() -> bool:
        return content_calls(upstream) >= 1

    await workers.eventually(downloading, "the first worker starts downloading")
    doomed.kill()
    assert await doomed.exited(10) == -signal.SIGKILL

    killed = await video_row(database, view.id)
    assert not JobState(killed.job_state).is_terminal
    assert holder_pid(killed) == doomed.pid, "the killed worker should hold the video"
    assert killed.video_key is None
    assert not await storage.exists(f"videos/{view.id}/video.mp4")

    # Upstream is quick again; the fresh worker must wait out the dead one's lease.
    upstream.state.emulator.faults.update({"slow_download_bps": None})
    fresh = workers.start()

    async def completed() -> bool:
        return await state_of(database, view.id) == "completed"

    await workers.eventually(completed, "a fresh worker finishes the video", TAKEOVER_SECONDS)

    video = await video_row(database, view.id)
    assert video.lease_version > killed.lease_version
    # The killed download plus each variant once more: the fresh worker started over.
    assert content_calls(upstream) >= 1 + len(Variant)
    assert (await event_kinds(database, view.id)).count(EventKind.ARCHIVED) == 1
    await assert_archived_whole(storage, video)
    left = await temporaries(storage)
    # The killed download's staging file, which the store's listing hides.
    staged = {name for name in files_under(tmp_path / "objects") if "#" in name}
    later = utcnow() + TEMPORARY_TTL + timedelta(minutes=1)
    removed = await Housekeeping(database, storage).remove_stale_temporaries(later)
    assert removed == len(left) + len(staged)
    assert not {name for name in files_under(tmp_path / "objects") if "#" in name}
    await assert_store_holds_only_archives(database, storage)
    await check_invariants(database, storage, upstream)
    await fresh.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_download_killed_mid_stream_leaves_no_file_behind_after_housekeeping(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    workers: Workers,
    tmp_path: Path,
) -> None:
    """DESIGN.md §4: a killed worker leaves only a temporary object that a janitor removes.

    On disk, not through the store's listing: a local store stages a streamed upload as
    `<key>#<n>` and hides such files from its listing, which is all housekeeping looks at.
    """
    upstream.state.emulator.faults.update({"slow_download_bps": SLOW_BPS})
    await videos.create(ada, NewVideo(prompt="cut off mid-stream"))
    doomed = workers.start()

    async def downloading() -> bool:
        return content_calls(upstream) >= 1

    await workers.eventually(downloading, "the worker starts downloading")
    await anyio.sleep(0.5)  # well inside the ~4 s stream
    doomed.kill()
    assert await doomed.exited(10) == -signal.SIGKILL

    later = utcnow() + TEMPORARY_TTL + timedelta(minutes=1)
    await Housekeeping(database, storage, temporary_ttl=TEMPORARY_TTL).remove_stale_temporaries(
        later
    )
    assert files_under(tmp_path / "objects") == set(), (
        "a killed download left files on disk that housekeeping cannot see or remove"
    )


# --- SIGKILL between upload and commit --------------------------------------------------------


async def test_a_worker_killed_before_its_commit_leaves_temporaries_that_housekeeping_removes(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    workers: Workers,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "commit-marker"
    prompt = "killed just before the commit"
    view, _ = await videos.create(ada, NewVideo(prompt=prompt))
    doomed = workers.start(launcher=HANGING_COMMIT, extra_env={MARKER_ENV: str(marker)})

    async def committing() -> bool:
        return marker.exists()

    await workers.eventually(committing, "the worker reaches the archive commit")
    orphan, archive = marker.read_text().split()
    doomed.kill()
    assert await doomed.exited(10) == -signal.SIGKILL

    # Whole uploads sit in temporaries (the video's, and any variant fetched before the
    # commit); nothing was written under the video's archive keys.
    assert archive == f"videos/{view.id}/video.mp4"
    orphans = await temporaries(storage)
    assert orphan in orphans
    assert (await storage.head(orphan)).size == len(slow_enough_assets(prompt).video)
    whole = {len(getattr(slow_enough_assets(prompt), variant.value)) for variant in Variant}
    assert {(await storage.head(key)).size for key in orphans} <= whole
    assert [info.key async for info in storage.list("videos")] == []
    killed = await video_row(database, view.id)
    assert not JobState(killed.job_state).is_terminal
    assert holder_pid(killed) == doomed.pid

    fresh = workers.start()

    async def completed() -> bool:
        return await state_of(database, view.id) == "completed"

    await workers.eventually(completed, "a fresh worker finishes the video", TAKEOVER_SECONDS)

    video = await video_row(database, view.id)
    await assert_archived_whole(storage, video)
    # The fresh worker committed its own temporaries; only the dead one's are left, and they
    # are too young for the janitor until the TTL has passed.
    assert await temporaries(storage) == orphans
    housekeeping = Housekeeping(database, storage, temporary_ttl=TEMPORARY_TTL)
    assert await housekeeping.remove_stale_temporaries() == 0
    later = utcnow() + TEMPORARY_TTL + timedelta(minutes=1)
    assert await housekeeping.remove_stale_temporaries(later) == len(orphans)
    assert await temporaries(storage) == set()
    await assert_archived_whole(storage, await video_row(database, view.id))
    await assert_store_holds_only_archives(database, storage)
    await check_invariants(database, storage, upstream)
    await fresh.stop()


# --- SIGTERM drains -------------------------------------------------------------------------


async def test_sigterm_lets_the_step_in_flight_finish_and_exits_cleanly(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    workers: Workers,
) -> None:
    upstream.state.emulator.faults.update({"slow_download_bps": SLOW_BPS})
    view, _ = await videos.create(ada, NewVideo(prompt="drained on the way out"))
    worker = workers.start()

    async def downloading() -> bool:
        return content_calls(upstream) >= 1

    await workers.eventually(downloading, "the worker starts downloading")
    in_flight = await video_row(database, view.id)
    assert not JobState(in_flight.job_state).is_terminal
    assert holder_pid(in_flight) == worker.pid

    worker.terminate()
    code = await worker.exited(DRAIN_SECONDS + 10)
    assert code == 0, f"exit status {code} on SIGTERM:\n{worker.output()}"

    # The download takes seconds, the drain allows far more: the step finished and gave
    # its lease back rather than being abandoned for another worker to redo.
    video = await video_row(database, view.id)
    assert video.job_state == "completed", worker.output()
    assert video.lease_owner is None
    assert video.lease_until is None
    assert video.lease_version == in_flight.lease_version
    await assert_archived_whole(storage, video)
    assert await temporaries(storage) == set()
    await assert_store_holds_only_archives(database, storage)
    await check_invariants(database, storage, upstream)


# --- PostgreSQL restarts, as its clients see it ----------------------------------------------


# How long PostgreSQL keeps dropping the worker's connections, over and over.
OUTAGE_SECONDS = 3.0
_BUSY = ("active", "idle in transaction", "idle in transaction (aborted)")


async def drop_connections(admin: asyncpg.Connection, database_name: str) -> tuple[int, int]:
    """End every connection to `database_name`, as a PostgreSQL restart does to its clients.

    Returns how many were ended, and how many of those were mid-query or mid-transaction.
    """
    # In the select list, not the WHERE clause: the planner may evaluate WHERE conditions in
    # any order, and must never end a backend of another database.
    rows = await admin.fetch(
        "SELECT state, pg_terminate_backend(pid) AS ended FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        database_name,
    )
    ended = [row for row in rows if row["ended"]]
    return len(ended), sum(1 for row in ended if row["state"] in _BUSY)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_worker_rides_out_postgres_dropping_every_connection(
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
    workers: Workers,
    migrated_url: str,
) -> None:
    url = make_url(migrated_url)
    name = url.database
    assert name is not None
    # Connected to the maintenance database, so the admin connection is never among the ended.
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    ids = []
    for i in range(8):
        view, _ = await videos.create(
            ada, NewVideo(prompt=f"through the outage {i} [[latency={1 + i % 3}]]")
        )
        ids.append(view.id)
    worker = workers.start()

    async def working() -> bool:
        async with database.session() as session:
            submitted = await session.scalars(
                select(Video.id).where(Video.provider_video_id.is_not(None))
            )
            return bool(submitted.all())

    await workers.eventually(working, "the worker submits a video")
    # Our own pool goes first, so every backend ended below is the worker's.
    await database.engine.dispose()
    ended = busy = 0
    admin = await asyncpg.connect(admin_dsn)
    try:
        with anyio.move_on_after(OUTAGE_SECONDS):
            while True:
                dropped, in_flight = await drop_connections(admin, name)
                ended, busy = ended + dropped, busy + in_flight
                await anyio.sleep(0.02)
    finally:
        await admin.close()
    assert ended >= 1, "the worker held no connection to drop"
    assert busy >= 1, "no dropped connection was in the middle of a query or transaction"

    async def all_completed() -> bool:
        return all([await state_of(database, video_id) == "completed" for video_id in ids])

    await workers.eventually(all_completed, "every video completes", TAKEOVER_SECONDS)
    assert worker.alive(), "the worker should recover by itself, not exit"
    for video_id in ids:
        await assert_archived_whole(storage, await video_row(database, video_id))
    await assert_store_holds_only_archives(database, storage)
    await check_invariants(database, storage, upstream)
    await worker.stop()
