"""Benchmark the job engine: videos per second end to end, beside the bare claim SQL.

Run with `uv run python bench/engine.py [--videos N] [--alone-videos M] [--concurrency C]
[--engines E] [--database-url postgresql+asyncpg://user@host/db]` (default: a throwaway SQLite
file). A PostgreSQL URL names the admin database: a throwaway database is created next to it,
migrated, and dropped afterwards.

In one run, on the same database:

1. **Bare claim**: `claim_due(limit=1)` + `release` of each of the N accepted videos, one after
   the other — the floor of what one claim costs on this database. Measured twice, just before
   and just after the engine-alone run, and pooled: on a shared VM the speed of the machine
   drifts by half within minutes, and the ratio should compare the two at the same moment.
2. **Engine alone**: M fresh videos (default 3,000) driven to the end by E engines against an
   instant in-memory provider (every job done when first polled, tiny assets): claims, fenced
   writes, storage, and no SDK or HTTP work. More videos than the other runs: every video waits
   about a second between its create and its first poll (the backoff's first step), and with
   a few hundred the run measured that second rather than the engine (300 videos took 1.5 s
   at 3 ms of CPU each).
3. **Engine, polling**: the first N videos (made due again) against the emulator in its own
   process on loopback (as a real provider is elsewhere) with latency 0, `poll_after_ms=0` and
   a stub renderer, through the official SDK, downloads into (memory) storage.
4. **Engine, with webhooks**: N fresh videos, the engine in webhook mode (polls only as a
   60 s safety net) and the emulator signing `video.completed` events to a receiver in this
   process that runs Reelforge's inbound webhook service, which nudges the engine.

Printed for each run: videos/s and its ratio to the bare claim rate (the engine alone's, once
the goal at >= 0.5, is now a regression figure), CPU per video in this process, database
transactions committed and SQL statements sent per video (claims included, empty ones too;
the bare claim's per row are printed beside), double claims (upstream jobs not referenced by
exactly one video; must be 0), and upstream calls per completed video from the upstream's own
counters (goal with webhooks: 1 create, <= 2 retrieves).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
import uvloop
from granian.constants import Interfaces
from granian.server.embed import Server
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import bindparam, event, func, make_url, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelforge.bus import LocalBus
from reelforge.db import migrate
from reelforge.db.claim import claim_due, release
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain import catalog
from reelforge.domain.clock import utcnow
from reelforge.domain.states import JobState
from reelforge.domain.upstream import (
    CreateRequest,
    UpstreamPage,
    UpstreamStatus,
    UpstreamVideo,
    Variant,
)
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.emulator.server import free_port, running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.logs import configure_logging
from reelforge.providers.base import Provider
from reelforge.providers.openai import OpenAIProvider
from reelforge.providers.registry import EMULATOR_API_KEY
from reelforge.services.accounts import Accounts
from reelforge.services.inbound import InboundWebhooks
from reelforge.services.jobs import Jobs
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.videos import NewVideo, Videos
from reelforge.settings import LogLevel
from reelforge.storage import open_storage
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.steps import Steps

TERMINAL = [state.value for state in JobState if state.is_terminal]

# The engine alone beside the bare claim is a regression figure (it was a goal, met at 0.5):
# the polling and webhook runs add the SDK, HTTP and a webhook receiver in this process, and show
# what those cost beside it. CPU per video is the figure to compare across changes
# (bench/engine.md).
ALONE = "instant in-memory provider (the engine alone)"
RATIO_FLOOR = 0.5
RATIO_LABEL = f" (regression floor {RATIO_FLOOR})"


def stub_renderer(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
    if progress is not None:
        progress(1.0)
    return stub_assets(spec.prompt)


def stub_assets(prompt: str) -> RenderedAssets:
    """Tiny fixed assets, distinct per prompt: the bench measures no rendering."""
    seed = hashlib.sha256(prompt.encode()).digest()
    return RenderedAssets(
        video=b"\x00\x00\x00\x18ftypmp42" + seed * 32,
        thumbnail=b"RIFF\x00\x00\x00\x00WEBP" + seed,
        spritesheet=b"\xff\xd8\xff\xe0" + seed,
    )


@asynccontextmanager
async def throwaway_database(url: str | None) -> AsyncIterator[tuple[str, str]]:
    """(dialect label, URL) of a fresh, migrated database, removed afterwards."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "bench.db"
            sqlite_url = f"sqlite+aiosqlite:///{path}"
            await migrate.upgrade(sqlite_url)
            yield "sqlite", sqlite_url
        return
    admin = make_url(url)
    name = f"reelforge_bench_{uuid.uuid4().hex[:10]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        target = admin.set(database=name).render_as_string(hide_password=False)
        await migrate.upgrade(target)
        yield "postgresql", target
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


async def seed(database: Database, count: int, label: str) -> list[str]:
    hasher = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    account = await Accounts(database, hasher).create(
        f"{label}@example.org", "correct horse battery", display_name=label
    )
    storage, spec = open_storage("memory://"), catalog.provider("emulator")
    lifecycle = Lifecycle(database, LocalBus())
    videos = Videos(database, storage, spec, lifecycle, max_prompt_length=1000)
    ids = []
    for number in range(count):
        view, _ = await videos.create(account, NewVideo(prompt=f"{label} clip {number}"))
        ids.append(view.id)
    return ids


async def make_due(database: Database, ids: list[str]) -> None:
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video)
            .where(Video.id.in_(ids))
            .values(next_check_at=utcnow(), lease_owner=None, lease_until=None)
        )


@contextmanager
def counting(database: Database) -> Iterator[Counter[str]]:
    """Count the SQL statements sent and the transactions committed while the block runs."""
    counts = Counter[str]()

    def sent(*_: object) -> None:
        counts["statements"] += 1

    def committed(_connection: object) -> None:
        counts["commits"] += 1

    # Plain reads go through a pool of their own on PostgreSQL (Database.reading).
    engines = [engine.sync_engine for engine in database.engines]
    for sync in engines:
        event.listen(sync, "before_cursor_execute", sent)
        event.listen(sync, "commit", committed)
    try:
        yield counts
    finally:
        for sync in engines:
            event.remove(sync, "before_cursor_execute", sent)
            event.remove(sync, "commit", committed)


@dataclass(frozen=True)
class Timing:
    seconds: float
    cpu_seconds: float
    commits: int
    statements: int

    def __add__(self, other: Timing) -> Timing:
        return Timing(
            self.seconds + other.seconds,
            self.cpu_seconds + other.cpu_seconds,
            self.commits + other.commits,
            self.statements + other.statements,
        )


async def bare_claims(database: Database, count: int) -> Timing:
    """`count` claim+release round trips of one row each, one after the other."""
    start = time.perf_counter()
    cpu = time.process_time()
    done = 0
    with counting(database) as counts:
        while done < count:
            claims = await claim_due(
                database, owner="bench", now=utcnow(), lease=timedelta(seconds=60), limit=1
            )
            if not claims:
                raise RuntimeError(f"only {done} of {count} rows were due")
            await release(database, claims[0], next_check_at=None)
            done += 1
    return Timing(
        time.perf_counter() - start,
        time.process_time() - cpu,
        counts["commits"],
        counts["statements"],
    )


# Each run's videos are all of one seeded account's. Counted by the owner, and not by an IN
# list of the run's ids: the watcher runs every 20 ms in the engine's process, and an IN list
# bound afresh each time took 30 % of a 1,500-video run's samples (py-spy; at 300, by
# estimate, about a tenth of the CPU charged to the engine).
_UNFINISHED = select(func.count()).where(
    Video.owner_id
    == select(Video.owner_id).where(Video.id == bindparam("any_id")).scalar_subquery(),
    Video.job_state.not_in(TERMINAL),
)


async def unfinished(database: Database, ids: list[str]) -> int:
    """How many of the run's videos (one account's, `ids`) are not finished yet."""
    async with database.reading() as connection:
        return int(await connection.scalar(_UNFINISHED, {"any_id": ids[0]}) or 0)


# --- the upstream, in its own process -----------------------------------------------------


def _serve_upstream(port: int, webhook_url: str | None, secret: str | None, stop: Any) -> None:
    configure_logging(LogLevel.WARNING)
    settings = EmulatorSettings(
        poll_after_ms=0,
        latency_seconds=0,
        render_concurrency=8,
        webhook_url=webhook_url,
        webhook_secret=secret,
    )
    app = create_emulator_app(settings, renderer=stub_renderer)
    try:
        with running(app, port=port):
            stop.wait()
    finally:
        app.state.emulator.close()


@dataclass(frozen=True)
class Upstream:
    root: str

    def provider(self) -> OpenAIProvider:
        return OpenAIProvider(
            spec=catalog.provider("emulator"),
            api_key=EMULATOR_API_KEY,
            base_url=f"{self.root}/v1",
            timeout=30,
        )

    def calls(self) -> dict[str, int]:
        stats = httpx.get(f"{self.root}/_emulator/stats", timeout=10).json()
        return dict(stats["calls"])

    def jobs(self) -> list[str]:
        ledger = httpx.get(f"{self.root}/_emulator/ledger", timeout=10).json()
        return [row["id"] for row in ledger["data"]]


@contextmanager
def upstream_process(
    webhook_url: str | None = None, secret: str | None = None
) -> Iterator[Upstream]:
    """The emulator served by a child process, so its work doesn't share the engine's CPU."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    port = free_port()
    process = context.Process(
        target=_serve_upstream, args=(port, webhook_url, secret, stop), daemon=True
    )
    process.start()
    upstream = Upstream(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{upstream.root}/_emulator/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator process did not start") from None
            time.sleep(0.1)
    try:
        yield upstream
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()


class InstantProvider:
    """Upstream at no cost: in memory, every job finished by the time it is first polled.

    With it the bench measures the engine alone (claims, fenced writes, storage), without the
    SDK and HTTP client work a real provider call costs (the emulator run shows that).
    """

    name = "emulator"  # the videos were accepted against the emulator's catalog

    def __init__(self) -> None:
        self.spec = catalog.provider("emulator")
        self.jobs: dict[str, UpstreamVideo] = {}
        self.calls: Counter[str] = Counter()

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        self.calls["videos.create"] += 1
        job = UpstreamVideo(
            id=f"video_{uuid.uuid4().hex}",
            status=UpstreamStatus.QUEUED,
            model=request.model,
            size=request.size,
            seconds=request.seconds,
            progress=0,
            prompt=request.prompt,
            created_at=utcnow(),
            poll_after_ms=0,
        )
        self.jobs[job.id] = job
        return job

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        self.calls["videos.retrieve"] += 1
        now = utcnow()
        return replace(
            self.jobs[video_id],
            status=UpstreamStatus.COMPLETED,
            progress=100,
            completed_at=now,
            expires_at=now + timedelta(hours=1),
        )

    @asynccontextmanager
    async def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AsyncIterator[_Content]:
        self.calls["videos.content"] += 1
        assets = stub_assets(self.jobs[video_id].prompt or "")
        yield _Content(getattr(assets, variant.value), variant.default_content_type)

    async def list(self, **_: Any) -> UpstreamPage:
        raise NotImplementedError("nothing is reconciled: no create fails here")

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class _Content:
    data: bytes
    content_type: str

    @property
    def content_length(self) -> int:
        return len(self.data)

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        yield self.data


# --- the engine -------------------------------------------------------------------------


def webhook_receiver(inbound: InboundWebhooks) -> Starlette:
    """Just the inbound webhook route, on Reelforge's own inbound service."""

    async def receive(request: Request) -> Response:
        await inbound.receive("emulator", await request.body(), request.headers)
        return Response(status_code=204)

    return Starlette(routes=[Route("/webhooks/emulator", receive, methods=["POST"])])


async def run_engines(
    database: Database,
    make_provider: Callable[[], Provider],
    ids: list[str],
    *,
    engines: int,
    concurrency: int,
    limit: float,
    webhooks: tuple[int, InboundWebhooks] | None = None,
) -> Timing:
    """Wall seconds, CPU seconds of this process, transactions committed and statements sent
    (the bench's own watching left out) for the engines to finish every video."""
    storage = open_storage("memory://")
    providers = [make_provider() for _ in range(engines)]
    config = EngineConfig(concurrency=concurrency, lease=timedelta(seconds=60), idle_seconds=0.02)
    # Each engine as its own worker process would have it: its own group commit.
    jobs = Jobs(database)
    running_engines = [
        Engine(
            jobs,
            Steps(
                Lifecycle(database, LocalBus()),
                jobs,
                storage,
                provider,
                deadline=timedelta(minutes=10),
                webhooks=webhooks is not None,
            ),
            config=config,
            provider_name=provider.name,
        )
        for provider in providers
    ]
    stopping = anyio.Event()
    watched = 0  # statements of this function's own `unfinished` checks, one each
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        with counting(database) as counts:
            async with anyio.create_task_group() as group:
                receiver = None
                if webhooks is not None:
                    port, inbound = webhooks

                    async def wake(video_id: str) -> None:
                        for engine in running_engines:
                            engine.wake(video_id)

                    inbound.on_nudge = wake
                    receiver = Server(
                        webhook_receiver(inbound),
                        address="127.0.0.1",
                        port=port,
                        interface=Interfaces.ASGINL,
                        log_enabled=False,
                    )
                    group.start_soon(receiver.serve)
                for engine in running_engines:
                    group.start_soon(engine.run, stopping)
                with anyio.fail_after(limit):
                    while True:
                        watched += 1
                        if not await unfinished(database, ids):
                            break
                        await anyio.sleep(0.02)
                elapsed = time.perf_counter() - start
                cpu = time.process_time() - cpu
                stopping.set()
                if receiver is not None:
                    receiver.stop()
    finally:
        for provider in providers:
            await provider.aclose()
    return Timing(elapsed, cpu, counts["commits"], counts["statements"] - watched)


@dataclass(frozen=True)
class Outcome:
    videos: int
    timing: Timing
    states: Counter[str]
    double: int
    jobs: int
    calls: dict[str, int]

    def per_video(self, route: str) -> float:
        completed = self.states.get("completed", 0)
        return self.calls.get(route, 0) / completed if completed else float("nan")


async def outcome(
    database: Database,
    ids: list[str],
    jobs: list[str],
    calls: dict[str, int],
    timing: Timing,
) -> Outcome:
    async with database.session() as session:
        rows = (
            await session.execute(
                select(Video.job_state, Video.provider_video_id).where(Video.id.in_(ids))
            )
        ).all()
    referenced = Counter(upstream_id for _, upstream_id in rows if upstream_id is not None)
    double = sum(1 for job in jobs if referenced[job] != 1) + sum(
        count - 1 for count in referenced.values() if count > 1
    )
    return Outcome(
        videos=len(ids),
        timing=timing,
        states=Counter(state for state, _ in rows),
        double=double,
        jobs=len(jobs),
        calls=calls,
    )


async def bench(args: argparse.Namespace) -> None:
    configure_logging(LogLevel.WARNING)
    async with throwaway_database(args.database_url) as (dialect, url):
        # Sized as the README tells an operator to (REELFORGE_DATABASE_POOL_SIZE): every step
        # can hold a connection without the pool closing and reopening them.
        database = Database(url, pool_size=args.engines * args.concurrency + 8)
        try:
            ids = await seed(database, args.videos, "polling")
            before = await bare_claims(database, len(ids))
            instant_ids = await seed(database, args.alone_videos, "instant")
            provider = InstantProvider()
            timing = await run_engines(
                database,
                lambda: provider,
                instant_ids,
                engines=args.engines,
                concurrency=args.concurrency,
                limit=args.timeout,
            )
            instant = await outcome(
                database, instant_ids, list(provider.jobs), dict(provider.calls), timing
            )
            await make_due(database, ids)
            after = await bare_claims(database, len(ids))
            await make_due(database, ids)
            with upstream_process() as upstream:
                timing = await run_engines(
                    database,
                    upstream.provider,
                    ids,
                    engines=args.engines,
                    concurrency=args.concurrency,
                    limit=args.timeout,
                )
                polling = await outcome(database, ids, upstream.jobs(), upstream.calls(), timing)
            hooked_ids = await seed(database, args.videos, "webhooks")
            secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
            port = free_port()
            inbound = InboundWebhooks(database, provider="emulator", secret=secret)
            hook_url = f"http://127.0.0.1:{port}/webhooks/emulator"
            with upstream_process(hook_url, secret) as upstream:
                timing = await run_engines(
                    database,
                    upstream.provider,
                    hooked_ids,
                    engines=args.engines,
                    concurrency=args.concurrency,
                    limit=args.timeout,
                    webhooks=(port, inbound),
                )
                hooked = await outcome(
                    database, hooked_ids, upstream.jobs(), upstream.calls(), timing
                )
        finally:
            await database.close()
    report(
        args,
        dialect,
        (before, after),
        {
            ALONE: instant,
            "emulator over HTTP, polling": polling,
            "emulator, with webhooks": hooked,
        },
    )


def report(
    args: argparse.Namespace,
    dialect: str,
    bares: tuple[Timing, Timing],
    runs: dict[str, Outcome],
) -> None:
    bare = bares[0] + bares[1]
    rows = 2 * args.videos
    claim_rate = rows / bare.seconds
    before, after = (args.videos / timing.seconds for timing in bares)
    print(
        f"\nReelforge job engine on {dialect}: {args.videos} videos per run "
        f"({args.alone_videos} for the engine alone), {args.engines} "
        f"engine(s) x concurrency {args.concurrency}, stub assets, upstream latency 0\n"
    )
    lines = [
        ("bare claim_due+release (1 row, serial)", f"{claim_rate:8.1f} rows/s"),
        ("  before / after the engine-alone run", f"{before:8.1f} / {after:.1f} rows/s"),
        ("  CPU per claim+release", f"{1000 * bare.cpu_seconds / rows:8.1f} ms"),
        ("  transactions per row", f"{bare.commits / rows:8.2f}"),
        ("  statements per row", f"{bare.statements / rows:8.2f}"),
    ]
    for name, run in runs.items():
        timing = run.timing
        rate = run.videos / timing.seconds
        cpu_ms = 1000 * timing.cpu_seconds / run.videos
        completed = run.states.get("completed", 0)
        total = sum(run.calls.values())
        per_video = total / completed if completed else float("nan")
        lines += [
            (f"engine, {name}", f"{rate:8.1f} videos/s"),
            (
                f"  ratio to bare claim{RATIO_LABEL if name == ALONE else ''}",
                f"{rate / claim_rate:8.2f}",
            ),
            ("  CPU per video (this process)", f"{cpu_ms:8.1f} ms"),
            ("  transactions per video", f"{timing.commits / run.videos:8.2f}"),
            ("  statements per video", f"{timing.statements / run.videos:8.2f}"),
            ("  videos by state", ", ".join(f"{k}={v}" for k, v in sorted(run.states.items()))),
            ("  double claims (must be 0)", f"{run.double:8d}"),
            ("  upstream jobs made", f"{run.jobs:8d}"),
            ("  upstream calls / completed video", f"{per_video:8.2f}"),
        ]
        lines += [
            (f"    {label}", f"{run.per_video(route):8.2f}")
            for label, route in [
                ("create", "videos.create"),
                ("retrieve", "videos.retrieve"),
                ("download (3 variants)", "videos.content"),
                ("list (reconcile)", "videos.list"),
            ]
        ]
    alone = runs[ALONE].videos / runs[ALONE].timing.seconds / claim_rate
    lines.append(
        (
            f"engine alone >= {RATIO_FLOOR} x bare claim (regression figure)",
            "yes" if alone >= RATIO_FLOOR else "NO",
        )
    )
    hooked = runs["emulator, with webhooks"]
    met = hooked.per_video("videos.create") <= 1 and hooked.per_video("videos.retrieve") <= 2
    lines.append(("goal with webhooks: 1 create, <= 2 retrieves", "met" if met else "NOT met"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"  {label:<{width}}  {value}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--alone-videos", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--engines", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    # The event loop `reelforge worker` and `serve` run on.
    uvloop.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
