"""The embedded default, whole: /api create → built-in emulator renders → archive → download."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import av
import pytest
from fastapi import FastAPI

from tests.support.api import Caller, callers

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ada(working_app: FastAPI) -> AsyncIterator[Caller]:
    async with AsyncExitStack() as stack:
        make = await callers(working_app, stack)
        yield await make("ada@example.org")


async def wait_until_finished(caller: Caller, video_id: str) -> dict[str, Any]:
    with anyio.fail_after(60):
        while True:
            video: dict[str, Any] = (await caller.client.get(f"/api/videos/{video_id}")).json()[
                "data"
            ]
            if video["status"] in ("completed", "failed"):
                return video
            await anyio.sleep(0.2)


async def test_a_prompt_becomes_an_archived_mp4(ada: Caller) -> None:
    created = await ada.client.post(
        "/api/videos", json={"prompt": "a lighthouse at dusk", "size": "1280x720"}
    )
    video = await wait_until_finished(ada, created.json()["data"]["id"])

    assert video["status"] == "completed", video
    assert video["progress"] == 100
    assert video["cost"]["final"] == "0.40"
    assert video["created_at"] <= video["completed_at"] <= video["archived_at"]
    assert video["file_url"].startswith(f"/api/files/{video['id']}/video?expires=")
    download = await ada.client.get(video["file_url"])
    assert download.status_code == 200
    with av.open(io.BytesIO(download.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 4) < 0.2
    thumbnail = await ada.client.get(video["downloads"]["thumbnail"])
    assert thumbnail.content[8:12] == b"WEBP"
    events = (await ada.client.get(f"/api/videos/{video['id']}/events")).json()["data"]
    assert [e["kind"] for e in events] == ["created", "submitted", "completed", "archived"]


async def test_a_remix_follows_its_parent(ada: Caller) -> None:
    created = await ada.client.post("/api/videos", json={"prompt": "a fox in a forest"})
    parent = await wait_until_finished(ada, created.json()["data"]["id"])

    remixed = await ada.client.post(
        f"/api/videos/{parent['id']}/remix", json={"prompt": "the same fox, in snow"}
    )
    remix = await wait_until_finished(ada, remixed.json()["data"]["id"])

    assert remix["status"] == "completed", remix
    assert remix["remixed_from_video_id"] == parent["id"]
    assert remix["size"] == parent["size"]


async def test_an_upstream_failure_is_refunded(ada: Caller) -> None:
    created = await ada.client.post("/api/videos", json={"prompt": "doomed [[fail]]"})
    video = await wait_until_finished(ada, created.json()["data"]["id"])

    assert video["status"] == "failed"
    assert video["error"]["code"] == "video_generation_failed"
    assert video["cost"]["final"] == "0.00"
    usage = (await ada.client.get("/api/me/usage")).json()["data"]
    assert usage["month_spend"] == "0.00"
    assert usage["videos_used"] == 0
