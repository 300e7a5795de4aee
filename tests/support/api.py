"""Callers of the HTTP API (users with keys and clients), and an archive stand-in for the engine."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from reelforge.db.models import Video
from reelforge.domain.accounts import Account, Role
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import Variant
from reelforge.runtime import Runtime, default_quota
from reelforge.services.accounts import Accounts
from reelforge.services.archive import archive_key
from tests.support.accounts import FAST_HASHER, PASSWORD

BASE_URL = "http://reelforge.test"


@dataclass
class Caller:
    account: Account
    key: str
    client: httpx.AsyncClient


MakeCaller = Callable[..., Awaitable[Caller]]


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def callers(app: FastAPI, stack: AsyncExitStack) -> MakeCaller:
    runtime = runtime_of(app)
    # Cheap argon2 parameters to make users fast; the app verifies them all the same.
    accounts = Accounts(runtime.database, FAST_HASHER, quota=default_quota(runtime.settings))

    async def make(email: str, role: Role = Role.USER) -> Caller:
        account = await accounts.create(email, PASSWORD, role=role)
        _, key = await runtime.keys.create(account, "tests")
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {key}"},
            )
        )
        return Caller(account=account, key=key, client=client)

    return make


def outcome(video: dict[str, Any]) -> tuple[str, str | None]:
    """An /api video's status and error code: a cancelled video is ("failed", "cancelled")."""
    error = video["error"]
    return video["status"], error["code"] if error else None


async def archive(runtime: Runtime, video_id: str, assets: dict[str, bytes]) -> None:
    """Do what the job engine does at the end: store the outputs and mark the video completed."""
    values: dict[str, object] = {
        "job_state": "completed",
        "progress": 100,
        "completed_at": utcnow(),
        "archived_at": utcnow(),
    }
    for variant, data in assets.items():
        key = archive_key(video_id, Variant(variant))
        stored = await runtime.storage.put(key, _chunks(data))
        values |= {
            f"{variant}_key": stored.key,
            f"{variant}_bytes": stored.size,
            f"{variant}_sha256": hashlib.sha256(data).hexdigest(),
        }
    async with runtime.database.session() as session, session.begin():
        await session.execute(update(Video).where(Video.id == video_id).values(**values))


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]
