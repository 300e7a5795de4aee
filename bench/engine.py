"""Benchmark the job engine: videos per second end to end, beside the bare claim SQL.

Run with `uv run python bench/engine.py [--videos N] [--concurrency C] [--engines E]
[--database-url postgresql+asyncpg://user@host/db]` (default: a throwaway SQLite file). A
PostgreSQL URL names the admin database: a throwaway database is created next to it, migrated,
and dropped afterwards.

In one run, on the same database:

1. **Bare claim**: `claim_due(limit=1)` + `release` of each of the N accepted videos, one after
   the other — the floor of what one claim costs on this database.
2. **Engine**: the same N videos (made due again) are driven to the end by E engines against
   the in-process emulator with latency 0, `poll_after_ms=0` and a stub renderer (tiny fixed
   assets), so neither rendering nor upstream latency is measured, only the engine: claims,
   fenced writes, upstream calls, downloads into (memory) storage.

Printed: both rates, the goal (engine >= half the bare claim rate), double claims (upstream
jobs not referenced by exactly one video; must be 0), and upstream calls per completed video
from the emulator's stats. Webhook-driven wake-ups are not wired into the engine yet.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import make_url, select, update

from reelforge.db import migrate
from reelforge.db.claim import claim_due, release
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.catalog import provider as catalog_provider
from reelforge.domain.clock import utcnow
from reelforge.domain.states import JobState
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.emulator.settings import EmulatorSettings
from reelforge.logs import configure_logging
from reelforge.providers.registry import emulator_provider
from reelforge.services.accounts import Accounts
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


async def seed(database: Database, count: int) -> list[str]:
    hasher = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    account = await Accounts(database, hasher).create(
        "bench@example.org", "correct horse battery", display_name="Bench"
    )
    videos = Videos(
        database, open_storage("memory://"), catalog_provider("emulator"), max_prompt_length=1000
    )
    ids = []
    for number in range(count):
        view, _ = await videos.create(account, NewVideo(prompt=f"bench clip {number}"))
        ids.append(view.id)
    return ids


async def make_due(database: Database) -> None:
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video).values(next_check_at=utcnow(), lease_owner=None, lease_until=None)
        )


async def bare_claims(database: Database, count: int) -> float:
    """Seconds for `count` claim+release round trips of one row each."""
    start = time.perf_counter()
    done = 0
    while done < count:
        claims = await claim_due(
            database, owner="bench", now=utcnow(), lease=timedelta(seconds=60), limit=1
        )
        if not claims:
            raise RuntimeError(f"only {done} of {count} rows were due")
        await release(database, claims[0], next_check_at=None)
        done += 1
    return time.perf_counter() - start


async def unfinished(database: Database) -> int:
    async with database.session() as session:
        rows = await session.scalars(select(Video.id).where(Video.job_state.not_in(TERMINAL)))
        return len(rows.all())


async def run_engines(
    database: Database, emulator: Any, *, engines: int, concurrency: int, limit: float
) -> float:
    storage = open_storage("memory://")
    providers = [emulator_provider(emulator, timeout=30) for _ in range(engines)]
    config = EngineConfig(concurrency=concurrency, lease=timedelta(seconds=60), idle_seconds=0.02)
    running = [
        Engine(
            database,
            Steps(database, storage, provider, deadline=timedelta(minutes=10)),
            config=config,
            provider_name=provider.name,
        )
        for provider in providers
    ]
    stopping = anyio.Event()
    start = time.perf_counter()
    try:
        async with anyio.create_task_group() as group:
            for engine in running:
                group.start_soon(engine.run, stopping)
            with anyio.fail_after(limit):
                while True:
                    if not await unfinished(database):
                        break
                    await anyio.sleep(0.02)
            elapsed = time.perf_counter() - start
            stopping.set()
    finally:
        for provider in providers:
            await provider.aclose()
    return elapsed


async def bench(args: argparse.Namespace) -> None:
    configure_logging(LogLevel.WARNING)
    async with throwaway_database(args.database_url) as (dialect, url):
        database = Database(url)
        emulator = create_emulator_app(
            EmulatorSettings(poll_after_ms=0, latency_seconds=0, render_concurrency=8),
            renderer=stub_renderer,
        )
        try:
            ids = await seed(database, args.videos)
            claim_seconds = await bare_claims(database, len(ids))
            await make_due(database)
            engine_seconds = await run_engines(
                database,
                emulator,
                engines=args.engines,
                concurrency=args.concurrency,
                limit=args.timeout,
            )
            async with database.session() as session:
                rows = (
                    await session.execute(select(Video.job_state, Video.provider_video_id))
                ).all()
        finally:
            emulator.state.emulator.close()
            await database.close()
    states = Counter(state for state, _ in rows)
    referenced = Counter(upstream for _, upstream in rows if upstream is not None)
    ledger = list(emulator.state.emulator.store.ledger_rows())
    double = sum(1 for row in ledger if referenced[row["id"]] != 1) + sum(
        count - 1 for count in referenced.values() if count > 1
    )
    calls = emulator.state.emulator.stats.snapshot()["calls"]
    completed = states.get("completed", 0)

    def per(route: str) -> float:
        return calls.get(route, 0) / completed if completed else float("nan")

    claim_rate = len(ids) / claim_seconds
    engine_rate = len(ids) / engine_seconds
    goal_met = engine_rate >= claim_rate / 2
    upstream_total = sum(calls.values())
    print(
        f"\nReelforge job engine on {dialect}: {len(ids)} videos, {args.engines} engine(s) "
        f"x concurrency {args.concurrency}, emulator latency 0, stub renderer\n"
    )
    lines = [
        ("bare claim_due+release (1 row, serial)", f"{claim_rate:8.1f} rows/s"),
        ("engine, end to end", f"{engine_rate:8.1f} videos/s"),
        ("  goal: engine >= 1/2 bare claim rate", f"{'met' if goal_met else 'NOT met'}"),
        ("  ratio engine / bare claim", f"{engine_rate / claim_rate:8.2f}"),
        ("videos by state", ", ".join(f"{k}={v}" for k, v in sorted(states.items()))),
        ("double claims (must be 0)", f"{double:8d}"),
        ("upstream jobs made", f"{len(ledger):8d}"),
        ("upstream calls / completed video", f"{upstream_total / completed:8.2f}"),
        ("  create", f"{per('videos.create'):8.2f}"),
        ("  retrieve", f"{per('videos.retrieve'):8.2f}"),
        ("  download (3 variants)", f"{per('videos.content'):8.2f}"),
        ("  list (reconcile)", f"{per('videos.list'):8.2f}"),
        ("with webhooks", "not wired into the engine yet"),
    ]
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
