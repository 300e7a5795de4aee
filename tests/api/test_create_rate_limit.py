"""The create rate limit on /v1 and /api: only valid creates count, and its 429 tells clients
truthfully how long to wait, or not to retry at all when the wait is longer than a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from reelforge.api.app import create_app
from reelforge.api.ratelimit import MAX_RETRY_WAIT_SECONDS
from tests.support.api import Caller, archive, callers, runtime_of

pytestmark = pytest.mark.anyio

ASSETS = {"video": b"\x00" * 64, "thumbnail": b"RIFF.WEBP", "spritesheet": b"\xff\xd8"}

Limited = Callable[[str], Awaitable[tuple[FastAPI, Caller]]]


@pytest.fixture
async def limited(make_settings: Any) -> AsyncIterator[Limited]:
    """An app whose create limit is `spec`, and a user of it."""
    async with AsyncExitStack() as stack:

        async def make(spec: str) -> tuple[FastAPI, Caller]:
            app = create_app(make_settings(embedded_worker=False, create_rate_limit=spec))
            await stack.enter_async_context(LifespanManager(app))
            make_caller = await callers(app, stack)
            return app, await make_caller("ada@example.org")

        yield make


def invalid_creates(prefix: str, queued: str, missing: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests each refused with a 4xx before anything is accepted."""
    return [
        (f"{prefix}/videos", {"json": {"prompt": "x", "seconds": "7"}}),
        (f"{prefix}/videos", {"json": {"prompt": "x", "size": "1920x1080"}}),
        (f"{prefix}/videos", {"json": {"prompt": "   "}}),
        (f"{prefix}/videos", {"json": {"model": "sora-2"}}),
        (f"{prefix}/videos", {"json": {"prompt": "x", "input_reference": {"file_id": "f"}}}),
        (f"{prefix}/videos/{queued}/remix", {"json": {"prompt": "not ready yet"}}),
        (f"{prefix}/videos/{missing}/remix", {"json": {"prompt": "no such video"}}),
        (f"{prefix}/videos/{queued}/remix", {"json": {"prompt": " "}}),
    ]


@pytest.mark.parametrize("prefix", ["/v1", "/api"])
async def test_refused_creates_use_up_no_slot(limited: Limited, prefix: str) -> None:
    app, ada = await limited("3/minute")
    parent = await ada.client.post(f"{prefix}/videos", json={"prompt": "the parent"})
    assert parent.is_success, parent.text
    parent_id = (parent.json().get("data") or parent.json())["id"]
    missing = "video_" + "0" * 48

    refusals = [
        (await ada.client.post(path, **options)).status_code
        for path, options in invalid_creates(prefix, parent_id, missing) * 2
    ]
    await archive(runtime_of(app), parent_id, ASSETS)
    accepted = [
        await ada.client.post(f"{prefix}/videos", json={"prompt": "a fox"}),
        await ada.client.post(f"{prefix}/videos/{parent_id}/remix", json={"prompt": "at night"}),
    ]
    over = await ada.client.post(f"{prefix}/videos", json={"prompt": "one too many"})

    assert all(400 <= status < 500 and status != 429 for status in refusals), refusals
    assert [r.status_code for r in accepted] == ([200, 200] if prefix == "/v1" else [201, 201])
    assert [r.headers["RateLimit-Remaining"] for r in accepted] == ["1", "0"]
    assert over.status_code == 429, over.text
    body = over.json()
    assert (body["error"]["code"] if prefix == "/v1" else body["code"]) == "rate_limit_exceeded"
    # A per-minute window: a short, truthful wait the SDKs may retry after.
    assert 0 < int(over.headers["Retry-After"]) <= 60
    assert "x-should-retry" not in over.headers


async def test_a_wait_longer_than_a_retry_says_not_to_retry(limited: Limited) -> None:
    _app, ada = await limited("1/day")
    assert (await ada.client.post("/v1/videos", json={"prompt": "a fox"})).status_code == 200

    over = await ada.client.post("/v1/videos", json={"prompt": "another"})

    assert over.status_code == 429
    wait = int(over.headers["Retry-After"])
    assert MAX_RETRY_WAIT_SECONDS < wait <= 86400
    assert over.headers["x-should-retry"] == "false"
