"""The SSE streams against a live `reelforge serve`, read with httpx as a browser's EventSource
would: one video's and all of a user's, Last-Event-ID, heartbeats, ownership, the per-user cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.serving import CONNECTIONS_PER_USER, Served, User, serve_environment, serving
from tests.support.sse import Comment, Event, events, messages

pytestmark = pytest.mark.anyio

MISSING_ID = "video_0000000000000000000000000000000000000000000000000"
# A guard against a hang, not a timing assertion.
WAIT_SECONDS = 60


async def _until(
    received: AsyncIterator[Event], video_id: str, status: str, seen: list[Event]
) -> Event:
    """Read events until `video_id` has `status`; every event read goes into `seen`."""
    with anyio.fail_after(WAIT_SECONDS):
        async for event in received:
            seen.append(event)
            if event.data["videoId"] == video_id and event.data.get("status") == status:
                return event
    raise AssertionError(f"the stream ended before {video_id} was {status}: {seen}")


async def test_a_video_stream_sends_its_state_then_every_change_up_to_completed(
    served: Served, ada: User
) -> None:
    video_id = await served.create(ada, "a fox [[latency=2]]")
    seen: list[Event] = []

    async with (
        served.client(ada) as client,
        client.stream("GET", f"/api/videos/{video_id}/stream") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        completed = await _until(events(stream), video_id, "completed", seen)

    assert seen[0].data["status"] in ("queued", "in_progress")
    assert {event.event for event in seen} == {"video.update"}
    assert all(event.id is not None and event.id.isdigit() for event in seen)
    progress = [event.data["progress"] for event in seen]
    assert progress == sorted(progress)
    assert completed.data == {"videoId": video_id, **await served.video(ada, video_id)}


async def test_the_stream_of_all_videos_sends_the_unfinished_at_once_and_new_ones_as_they_go(
    served: Served, ada: User
) -> None:
    waiting = await served.create(ada, "already running [[latency=3]]")
    seen: list[Event] = []

    async with served.client(ada) as client, client.stream("GET", "/api/stream") as stream:
        received = events(stream)
        first = await anext(received)
        created = await served.create(ada, "made while connected")
        await _until(received, created, "completed", seen)
        if waiting not in {e.data["videoId"] for e in seen if e.data["status"] == "completed"}:
            await _until(received, waiting, "completed", seen)

    assert first.data["videoId"] == waiting
    assert {e.data["videoId"] for e in seen} == {waiting, created}


async def test_last_event_id_brings_what_changed_while_away(served: Served, ada: User) -> None:
    await served.create(ada, "keeps the stream busy [[latency=20]]")
    async with served.client(ada) as client:
        async with client.stream("GET", "/api/stream") as stream:
            last_id = (await anext(events(stream))).id
        assert last_id is not None
        # Made and finished while the client was away; not unfinished any more.
        away = await served.create(ada, "while away")
        await _completed(served, ada, away)

        async with client.stream("GET", "/api/stream") as fresh:
            fresh_ids = await _catch_up_ids(fresh, served, ada)
        async with client.stream("GET", "/api/stream", headers={"Last-Event-ID": last_id}) as back:
            back_ids = await _catch_up_ids(back, served, ada)

    assert away not in fresh_ids
    assert away in back_ids


async def _catch_up_ids(stream: httpx.Response, served: Served, user: User) -> set[str]:
    """The videos a just-opened stream of all videos sends before the state of one made now."""
    assert stream.status_code == 200, await stream.aread()
    marker = await served.create(user, "a marker")
    ids: set[str] = set()
    with anyio.fail_after(WAIT_SECONDS):
        async for event in events(stream):
            if event.data["videoId"] == marker:
                return ids
            ids.add(event.data["videoId"])
    raise AssertionError("the stream ended")


async def _completed(served: Served, user: User, video_id: str) -> None:
    async with (
        served.client(user) as client,
        client.stream("GET", f"/api/videos/{video_id}/stream") as stream,
    ):
        await _until(events(stream), video_id, "completed", [])


@pytest.mark.parametrize("path", ["/api/stream", f"/api/videos/{MISSING_ID}/stream"])
async def test_a_malformed_last_event_id_is_a_400_naming_it(
    served: Served, ada: User, path: str
) -> None:
    async with served.client(ada) as client:
        response = await client.get(path, headers={"Last-Event-ID": "yesterday"})

    assert response.status_code == 400, response.text
    assert response.json()["field"] == "Last-Event-ID"


async def test_an_idle_stream_sends_comment_pings(served: Served, ada: User) -> None:
    video_id = await served.create(ada, "soon done")
    await _completed(served, ada, video_id)

    async with (
        served.client(ada) as client,
        client.stream("GET", f"/api/videos/{video_id}/stream") as stream,
    ):
        with anyio.fail_after(WAIT_SECONDS):
            received = messages(stream)
            first = await anext(received)
            second = await anext(received)

    assert isinstance(first, Event)
    assert first.data["status"] == "completed"
    assert isinstance(second, Comment)
    assert second.text.startswith("ping")


async def test_another_users_stream_never_carries_my_video(
    served: Served, ada: User, bob: User
) -> None:
    seen: list[Event] = []
    async with served.client(bob) as bobs, bobs.stream("GET", "/api/stream") as theirs:
        mine = await served.create(ada, "ada's, not bob's")
        await _completed(served, ada, mine)
        marker = await served.create(bob, "bob's marker")
        await _until(events(theirs), marker, "completed", seen)

    assert mine not in {event.data["videoId"] for event in seen}


async def test_a_user_holds_at_most_the_cap_of_streams(served: Served, ada: User) -> None:
    video_id = await served.create(ada, "watched a lot")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(served.client(ada))
        for _ in range(CONNECTIONS_PER_USER):
            stream = await stack.enter_async_context(
                client.stream("GET", f"/api/videos/{video_id}/stream")
            )
            assert stream.status_code == 200

        refused = await client.get("/api/stream")

    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "too_many_connections"
    assert "Retry-After" in refused.headers


async def test_streams_end_cleanly_when_the_server_stops(tmp_path: Path) -> None:
    environment = serve_environment(tmp_path / "data")
    async with serving(environment, tmp_path) as server:
        ada = await server.user("ada@example.org")
        video_id = await server.create(ada, "long [[latency=60]]")
        async with (
            server.client(ada) as client,
            client.stream("GET", f"/api/videos/{video_id}/stream") as stream,
        ):
            received = events(stream)
            await anext(received)

            server.process.terminate()
            with anyio.fail_after(WAIT_SECONDS):
                rest: list[Any] = [event async for event in received]  # ends, without an error

        assert rest == []
        assert await server.process.exited(30) == 0, server.process.output()
