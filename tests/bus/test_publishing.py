"""Every committed change of a video is published on the bus, from the API and the engine alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest
from fastapi import FastAPI

from reelforge.bus import Notice, Topic
from tests.support.api import Caller, callers, runtime_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ada(working_app: FastAPI) -> AsyncIterator[Caller]:
    async with AsyncExitStack() as stack:
        make = await callers(working_app, stack)
        yield await make("ada@example.org")


async def test_a_video_s_life_is_published_up_to_its_end(working_app: FastAPI, ada: Caller) -> None:
    seen: list[Notice] = []
    async with runtime_of(working_app).bus.subscribe() as notices:
        created = await ada.client.post("/api/videos", json={"prompt": "a lighthouse at dusk"})
        video_id = created.json()["data"]["id"]
        with anyio.fail_after(60):
            async for notice in notices:
                seen.append(notice)
                status = (await ada.client.get(f"/api/videos/{video_id}")).json()["data"]
                if status["status"] == "completed":
                    break
    assert {notice.id for notice in seen} == {video_id}
    assert {notice.owner_id for notice in seen} == {ada.account.id}
    assert seen[0].changed == {"created"}
    assert "state" in seen[-1].changed


async def test_accept_cancel_and_delete_are_published(app: FastAPI, ada_in_app: Caller) -> None:
    async with runtime_of(app).bus.subscribe() as notices:
        created = await ada_in_app.client.post("/api/videos", json={"prompt": "a quiet harbour"})
        video_id = created.json()["data"]["id"]
        await ada_in_app.client.post(f"/api/videos/{video_id}/cancel")
        await ada_in_app.client.delete(f"/api/videos/{video_id}")
        with anyio.fail_after(5):
            iterator = aiter(notices)
            changes = [await anext(iterator) for _ in range(4)]
    assert [(n.topic, n.id, n.changed) for n in changes] == [
        (Topic.VIDEO, video_id, {"created"}),
        # Its job is due now: every engine, in any process, looks at once.
        (Topic.WAKE, video_id, set()),
        (Topic.VIDEO, video_id, {"state"}),
        (Topic.VIDEO, video_id, {"deleted"}),
    ]


@pytest.fixture
async def ada_in_app(app: FastAPI) -> AsyncIterator[Caller]:
    async with AsyncExitStack() as stack:
        make = await callers(app, stack)
        yield await make("ada@example.org")
