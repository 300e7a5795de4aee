"""Driving the job engine in tests, and reading back what it left in the database."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import anyio
from fastapi import FastAPI
from sqlalchemy import select

from reelforge.bus import LocalBus
from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video, VideoEvent
from reelforge.domain.states import JobState
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.providers.base import Provider
from reelforge.services.jobs import Claim, Jobs
from reelforge.services.lifecycle import Lifecycle
from reelforge.storage import Storage
from reelforge.worker.engine import Engine
from reelforge.worker.steps import Steps


def tiny_assets(prompt: str, *, video_blocks: int = 256) -> RenderedAssets:
    """Small fixed assets, distinct per prompt, so engine tests measure the engine, not x264.

    The video is 12 + 32 * `video_blocks` bytes (8 KiB and a bit by default).
    """
    seed = hashlib.sha256(prompt.encode()).digest()
    return RenderedAssets(
        video=b"\x00\x00\x00\x18ftypmp42" + seed * video_blocks,
        thumbnail=b"RIFF\x00\x00\x00\x00WEBP" + seed,
        spritesheet=b"\xff\xd8\xff\xe0" + seed,
    )


def tiny_renderer(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
    """The emulator's renderer, swapped for `tiny_assets`."""
    if progress is not None:
        progress(1.0)
    return tiny_assets(spec.prompt)


async def run_until_settled(engines: list[Engine], database: Database, seconds: float = 60) -> None:
    """Run the engines until no video is left unfinished."""
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        for engine in engines:
            group.start_soon(engine.run, stopping)
        with anyio.fail_after(seconds):
            while await unfinished(database):
                await anyio.sleep(0.1)
        stopping.set()


async def unfinished(database: Database) -> int:
    terminal = [s.value for s in JobState if s.is_terminal]
    async with database.session() as session:
        rows = await session.scalars(select(Video.id).where(Video.job_state.not_in(terminal)))
        return len(rows.all())


async def video_row(database: Database, video_id: str) -> Video:
    async with database.session() as session:
        video = await session.get(Video, video_id)
        assert video is not None
        return video


async def event_kinds(database: Database, video_id: str) -> list[str]:
    """The kinds of a video's events, oldest first."""
    async with database.session() as session:
        rows = await session.scalars(
            select(VideoEvent.kind).where(VideoEvent.video_id == video_id).order_by(VideoEvent.id)
        )
        return list(rows)


async def ledger_of(database: Database, video_id: str) -> list[tuple[str, Decimal]]:
    async with database.session() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.video_id == video_id)
            .order_by(LedgerEntry.id)
        )
        return [(kind, Decimal(amount)) for kind, amount in rows]


def upstream_jobs(app: FastAPI) -> list[dict[str, Any]]:
    return list(app.state.emulator.store.ledger_rows())


def steps_for(
    database: Database, storage: Storage, provider: Provider, *, webhooks: bool = False
) -> Steps:
    """The engine's steps as a worker builds them, on their own lifecycle and bus."""
    return Steps(
        Lifecycle(database, LocalBus()),
        Jobs(database),
        storage,
        provider,
        deadline=timedelta(minutes=5),
        webhooks=webhooks,
    )


def at_version(claim: Claim, version: int) -> Claim:
    """`claim` as if its fencing token were `version` (a stale or a future holder's)."""
    return replace(claim, video=replace(claim.video, lease_version=version))
