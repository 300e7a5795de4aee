"""A restart of `reelforge serve`, graceful or not, loses no video: the embedded emulator's jobs
outlive the process, as a vendor's do, and every video ends with one upstream job."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from reelforge.db import migrate
from reelforge.emulator.server import free_port
from reelforge.emulator.state import STATE_FILE, read_ledger
from reelforge.emulator.store import LedgerEntry
from reelforge.runtime import default_quota, open_runtime
from reelforge.services.accounts import Accounts
from reelforge.settings import Settings
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.processes import (
    LEASE_SECONDS,
    START_SECONDS,
    WorkerProcess,
    Workers,
    serve_environment,
    workers_in,
)

pytestmark = [
    pytest.mark.anyio,
    # The SDK marks every Videos method deprecated (OpenAI shut the API down); ours lives on.
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

VIDEOS = 5
# Long enough that no video can finish before the server is stopped; renders run one at a time.
LATENCY_SECONDS = 6
# The restart, a killed server's leases, the renders and the latency, on a busy machine.
FINISH_SECONDS = START_SECONDS + LEASE_SECONDS + VIDEOS * 5 + LATENCY_SECONDS


@dataclass
class Site:
    data_dir: Path
    key: str


@dataclass
class Row:
    id: str
    job_state: str
    provider_video_id: str | None
    video_sha256: str | None


@pytest.fixture
async def site(tmp_path: Path) -> Site:
    """A migrated data directory with a user and an API key, as `reelforge serve` will find it."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    await migrate.upgrade(settings.resolved_database_url)
    runtime = open_runtime(settings)
    try:
        accounts = Accounts(runtime.database, FAST_HASHER, quota=default_quota(settings))
        account = await accounts.create("maker@example.org", PASSWORD)
        _, key = await runtime.keys.create(account, "restart")
    finally:
        await runtime.close()
    return Site(settings.data_dir, key)


@pytest.fixture
def servers(site: Site, tmp_path: Path) -> Iterator[Workers]:
    with workers_in(serve_environment(site.data_dir), tmp_path / "logs") as started:
        yield started


def upstream_jobs(site: Site) -> list[LedgerEntry]:
    """The emulator's ledger as its state file holds it (readable while the server runs)."""
    if not (site.data_dir / "emulator" / STATE_FILE).exists():
        return []
    return read_ledger(site.data_dir / "emulator")


def video_rows(site: Site) -> list[Row]:
    with sqlite3.connect(site.data_dir / "reelforge.db") as db:
        found = db.execute(
            "SELECT id, job_state, provider_video_id, video_sha256 FROM videos ORDER BY id"
        ).fetchall()
    return [Row(*row) for row in found]


async def start(servers: Workers) -> tuple[WorkerProcess, int]:
    port = free_port()
    server = servers.start(command=("serve", "--port", str(port)), group=True)

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{port}/ready", timeout=1)
        except httpx.TransportError:
            return False
        return answer.status_code == 200

    await servers.eventually(ready, "reelforge serve answers /ready")
    return server, port


def client(site: Site, port: int) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=site.key)


@pytest.mark.parametrize("stop", ["sigterm", "sigkill-group"])
async def test_every_video_in_flight_completes_after_a_restart_with_one_upstream_job(
    site: Site, servers: Workers, stop: str
) -> None:
    server, port = await start(servers)
    async with client(site, port) as sdk:
        ids = [
            (
                await sdk.videos.create(
                    prompt=f"a lighthouse keeper's day, take {n} [[latency={LATENCY_SECONDS}]]",
                    size="720x1280",
                    seconds="4",
                )
            ).id
            for n in range(VIDEOS)
        ]
    # Graceful: once every video has its upstream job. Killed: half way through submitting,
    # so that some creates are cut off too.
    submitted = VIDEOS if stop == "sigterm" else VIDEOS // 2

    async def upstream_has_them() -> bool:
        return len(upstream_jobs(site)) >= submitted

    await servers.eventually(upstream_has_them, f"{submitted} upstream jobs")
    if stop == "sigterm":
        await server.stop()
    else:
        server.kill()
        await server.exited(10)
    unfinished = [row for row in video_rows(site) if row.job_state != "completed"]
    assert len(unfinished) == VIDEOS, "a video finished before the server stopped"

    server, port = await start(servers)
    async with client(site, port) as sdk:

        async def all_completed() -> bool:
            statuses = [(await sdk.videos.retrieve(video_id)).status for video_id in ids]
            assert "failed" not in statuses, f"{statuses}\n{servers.logs()}"
            return statuses == ["completed"] * VIDEOS

        await servers.eventually(all_completed, "every video completed", FINISH_SECONDS)
    await server.stop()

    rows = video_rows(site)
    ledger = upstream_jobs(site)
    assert sorted(row.id for row in rows) == sorted(ids)
    # One upstream job per video, and no other: nothing was created twice.
    upstream_ids = sorted(str(row.provider_video_id) for row in rows)
    assert sorted(entry.id for entry in ledger) == upstream_ids
    assert {entry.status.value for entry in ledger} == {"completed"}
    for row in rows:
        upstream = site.data_dir / "emulator" / "assets" / str(row.provider_video_id) / "video.mp4"
        assert hashlib.sha256(upstream.read_bytes()).hexdigest() == row.video_sha256


async def test_the_standalone_emulator_keeps_its_jobs_in_its_state_dir(
    servers: Workers, tmp_path: Path
) -> None:
    state_dir = tmp_path / "emulator-state"
    port = free_port()
    command = ("emulator", "--port", str(port), "--state-dir", str(state_dir))
    emulator = servers.start(command=command, group=True)
    base = f"http://127.0.0.1:{port}"

    async def listening() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{base}/_emulator/health", timeout=1)).status_code == 200
        except httpx.TransportError:
            return False

    await servers.eventually(listening, "the emulator listens")
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-any") as sdk:
        video = await sdk.videos.create(prompt="a harbour at dawn [[latency=30]]", seconds="4")
    emulator.kill()
    await emulator.exited(10)

    emulator = servers.start(command=command, group=True)
    await servers.eventually(listening, "the emulator listens again")
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-any") as sdk:
        again = await sdk.videos.retrieve(video.id)
    async with httpx.AsyncClient() as http:
        ledger = (await http.get(f"{base}/_emulator/ledger")).json()
    await emulator.stop()

    assert again.status in ("queued", "in_progress")
    assert again.created_at == video.created_at
    assert [row["id"] for row in ledger["data"]] == [video.id]
