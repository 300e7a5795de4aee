"""Benchmark the job engine: videos per second end to end, beside the bare claim SQL.

Run with `uv run python bench/engine.py [--videos N] [--concurrency C] [--engines E]
[--database-url postgresql+asyncpg://user@host/db]` (default: a throwaway SQLite file). A
PostgreSQL URL names the admin database: a throwaway database is created next to it, migrated,
and dropped afterwards.

In one run, on the same database:

1. **Bare claim**: `claim_due(limit=1)` + `release` of each of the N accepted videos, one after
   the other — the floor of what one claim costs on this database.
2. **Engine, polling**: the same N videos (made due again) are driven to the end by E engines
   against the emulator in its own process on loopback (as a real provider is elsewhere) with
   latency 0, `poll_after_ms=0` and a stub renderer (tiny fixed assets), so neither rendering
   nor upstream latency is measured, only the engine: claims, fenced writes, upstream calls,
   downloads into (memory) storage.
3. **Engine, with webhooks**: N fresh videos, the engine in webhook mode (polls only as a
   60 s safety net) and the emulator signing `video.completed` events to a receiver in this
   process that runs Reelforge's inbound webhook service, which nudges the engine.

Printed: both rates, the goal (engine >= half the bare claim rate), double claims (upstream
jobs not referenced by exactly one video; must be 0), and upstream calls per completed video
in each mode, from the emulator's own counters (goal with webhooks: 1 create, <= 2 retrieves).
"""

from __future__ import annotations

import argparse
import asyncio
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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
from granian.constants import Interfaces
from granian.server.embed import Server
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import make_url, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelforge.db import migrate
from reelforge.db.claim import claim_due, release
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain import catalog
from reelforge.domain.clock import utcnow
from reelforge.domain.states import JobState
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.emulator.server import running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.logs import configure_logging
from reelforge.providers.openai import OpenAIProvider
from reelforge.providers.registry import EMULATOR_API_KEY
from reelforge.services.accounts import Accounts
from reelforge.services.inbound import InboundWebhooks
from reelforge.services.videos import NewVideo, Videos
from reelforge.settings import LogLevel
from reelforge.storage import open_storage
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.steps import Steps

TERMINAL = [state.value for state in JobState if state.is_terminal]


def stub_renderer(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
    seed = hashlib.sha256(spec.prompt.encode()).digest()
    if progress is not None:
        progress(1.0)
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
    videos = Videos(
        database, open_storage("memory://"), catalog.provider("emulator"), max_prompt_length=1000
    )
    ids = []
    for number in range(count):
        view, _ = await videos.create(account, NewVideo(prompt=f"{label} clip {number}"))
        ids.append(view.id)
    return ids


async def make_due(database: Database) -> None:
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video).values(next_check_at=utcnow(), lease_owner=None, lease_until=None)
        )


async def bare_claims(database: Database, count: int) -> tuple[float, float]:
    """(Wall seconds, CPU seconds) for `count` claim+release round trips of one row each."""
    start = time.perf_counter()
    cpu = time.process_time()
    done = 0
    while done < count:
        claims = await claim_due(
            database, owner="bench", now=utcnow(), lease=timedelta(seconds=60), limit=1
        )
        if not claims:
            raise RuntimeError(f"only {done} of {count} rows were due")
        await release(database, claims[0], next_check_at=None)
        done += 1
    return time.perf_counter() - start, time.process_time() - cpu


async def unfinished(database: Database) -> int:
    async with database.session() as session:
        rows = await session.scalars(select(Video.id).where(Video.job_state.not_in(TERMINAL)))
        return len(rows.all())


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


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the engine -------------------------------------------------------------------------


def webhook_receiver(inbound: InboundWebhooks) -> Starlette:
    """Just the inbound webhook route, on Reelforge's own inbound service."""

    async def receive(request: Request) -> Response:
        await inbound.receive("emulator", await request.body(), request.headers)
        return Response(status_code=204)

    return Starlette(routes=[Route("/webhooks/emulator", receive, methods=["POST"])])


async def run_engines(
    database: Database,
    upstream: Upstream,
    *,
    engines: int,
    concurrency: int,
    limit: float,
    webhooks: tuple[int, InboundWebhooks] | None = None,
) -> tuple[float, float]:
    """(Wall seconds, CPU seconds of this process) for the engines to finish every video."""
    storage = open_storage("memory://")
    providers = [upstream.provider() for _ in range(engines)]
    config = EngineConfig(concurrency=concurrency, lease=timedelta(seconds=60), idle_seconds=0.02)
    running_engines = [
        Engine(
            database,
            Steps(
                database,
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
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        async with anyio.create_task_group() as group:
            receiver = None
            if webhooks is not None:
                port, inbound = webhooks

                async def wake(_video_id: str) -> None:
                    for engine in running_engines:
                        engine.wake()

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
                    if not await unfinished(database):
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
    return elapsed, cpu


@dataclass(frozen=True)
class Outcome:
    seconds: float
    cpu_seconds: float
    states: Counter[str]
    double: int
    jobs: int
    calls: dict[str, int]

    def per_video(self, route: str) -> float:
        completed = self.states.get("completed", 0)
        return self.calls.get(route, 0) / completed if completed else float("nan")


async def outcome(
    database: Database, ids: list[str], upstream: Upstream, times: tuple[float, float]
) -> Outcome:
    async with database.session() as session:
        rows = (
            await session.execute(
                select(Video.job_state, Video.provider_video_id).where(Video.id.in_(ids))
            )
        ).all()
    referenced = Counter(upstream_id for _, upstream_id in rows if upstream_id is not None)
    jobs = upstream.jobs()
    double = sum(1 for job in jobs if referenced[job] != 1) + sum(
        count - 1 for count in referenced.values() if count > 1
    )
    return Outcome(
        seconds=times[0],
        cpu_seconds=times[1],
        states=Counter(state for state, _ in rows),
        double=double,
        jobs=len(jobs),
        calls=upstream.calls(),
    )


async def bench(args: argparse.Namespace) -> None:
    configure_logging(LogLevel.WARNING)
    async with throwaway_database(args.database_url) as (dialect, url):
        database = Database(url)
        try:
            ids = await seed(database, args.videos, "polling")
            claim_times = await bare_claims(database, len(ids))
            await make_due(database)
            with upstream_process() as upstream:
                times = await run_engines(
                    database,
                    upstream,
                    engines=args.engines,
                    concurrency=args.concurrency,
                    limit=args.timeout,
                )
                polling = await outcome(database, ids, upstream, times)
            hooked_ids = await seed(database, args.videos, "webhooks")
            secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
            port = free_port()
            inbound = InboundWebhooks(database, provider="emulator", secret=secret)
            hook_url = f"http://127.0.0.1:{port}/webhooks/emulator"
            with upstream_process(hook_url, secret) as upstream:
                times = await run_engines(
                    database,
                    upstream,
                    engines=args.engines,
                    concurrency=args.concurrency,
                    limit=args.timeout,
                    webhooks=(port, inbound),
                )
                hooked = await outcome(database, hooked_ids, upstream, times)
        finally:
            await database.close()
    report(args, dialect, claim_times, polling, hooked)


def report(
    args: argparse.Namespace,
    dialect: str,
    claim_times: tuple[float, float],
    polling: Outcome,
    hooked: Outcome,
) -> None:
    claim_rate = args.videos / claim_times[0]
    engine_rate = args.videos / polling.seconds
    print(
        f"\nReelforge job engine on {dialect}: {args.videos} videos per run, {args.engines} "
        f"engine(s) x concurrency {args.concurrency}, emulator in its own process "
        "(latency 0, stub renderer)\n"
    )
    lines = [
        ("bare claim_due+release (1 row, serial)", f"{claim_rate:8.1f} rows/s"),
        ("engine, end to end (polling)", f"{engine_rate:8.1f} videos/s"),
        ("  ratio engine / bare claim", f"{engine_rate / claim_rate:8.2f}"),
        ("CPU per claim+release (bare)", f"{1000 * claim_times[1] / args.videos:8.1f} ms"),
        (
            "CPU per video (engine, this process)",
            f"{1000 * polling.cpu_seconds / args.videos:8.1f} ms",
        ),
        (
            "  goal: engine >= 1/2 bare claim rate",
            "met" if engine_rate >= claim_rate / 2 else "NOT met",
        ),
    ]
    for name, run in (("polling", polling), ("with webhooks", hooked)):
        completed = run.states.get("completed", 0)
        total = sum(run.calls.values())
        lines += [
            (
                f"{name}: videos by state",
                ", ".join(f"{k}={v}" for k, v in sorted(run.states.items())),
            ),
            ("  double claims (must be 0)", f"{run.double:8d}"),
            ("  upstream jobs made", f"{run.jobs:8d}"),
            (
                "  upstream calls / completed video",
                f"{total / completed if completed else float('nan'):8.2f}",
            ),
            ("    create", f"{run.per_video('videos.create'):8.2f}"),
            ("    retrieve", f"{run.per_video('videos.retrieve'):8.2f}"),
            ("    download (3 variants)", f"{run.per_video('videos.content'):8.2f}"),
            ("    list (reconcile)", f"{run.per_video('videos.list'):8.2f}"),
        ]
    retrieves = hooked.per_video("videos.retrieve")
    creates = hooked.per_video("videos.create")
    met = creates <= 1 and retrieves <= 2
    lines.append(("  goal with webhooks: 1 create, <= 2 retrieves", "met" if met else "NOT met"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"  {label:<{width}}  {value}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--engines", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
