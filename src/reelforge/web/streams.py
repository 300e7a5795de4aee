"""SSE streams of video updates: one video's (`/api/videos/{id}/stream`) or all the caller's
(`/api/stream`), each event `video.update` with the same payload socket.io clients get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from reelforge.api.auth import CurrentAccount
from reelforge.api.deps import RuntimeDep
from reelforge.api.errors import ApiError, documented
from reelforge.domain.accounts import Account
from reelforge.domain.errors import InputError, NotFoundError
from reelforge.runtime import Runtime
from reelforge.web.callers import authenticator, bearer_token, session_of
from reelforge.web.live import Live, TooManyConnections, Update, Watcher

router = APIRouter(tags=["realtime"])

EVENT = "video.update"
# A client that stops reading for this long is dropped rather than held forever.
SEND_TIMEOUT_SECONDS = 30.0

_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "`text/event-stream`: `event: video.update` with the video as "
            "`GET /api/videos/{id}` has it in `data` plus `videoId`, and an `id:` to send back "
            "as `Last-Event-ID` on reconnect; comment pings between updates."
        ),
        "content": {"text/event-stream": {}},
    },
}

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=20,
        description="The `id` of the last event received; the stream re-reads what changed since.",
    ),
]


class Inbox:
    """A stream's updates not yet written: the latest per video, so a slow client skips states
    rather than piling them up."""

    def __init__(self) -> None:
        self._pending: dict[str, Update] = {}
        self._ready = anyio.Event()
        self._closed = False

    async def put(self, update: Update) -> None:
        self._pending.pop(update.video_id, None)
        self._pending[update.video_id] = update
        self._ready.set()

    async def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def updates(self) -> AsyncIterator[Update]:
        while True:
            if self._pending:
                yield self._pending.pop(next(iter(self._pending)))
            elif self._closed:
                return
            else:
                self._ready = anyio.Event()
                await self._ready.wait()


@router.get(
    "/api/videos/{video_id}/stream",
    response_class=EventSourceResponse,
    responses={**_STREAM_RESPONSES, **documented(400, 401, 404, 429)},
    summary="Live updates of a video (Server-Sent Events)",
)
async def video_stream(
    video_id: str,
    request: Request,
    account: CurrentAccount,
    runtime: RuntimeDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    # Whatever the client last saw, it gets the video's state now: nothing more to look up.
    _since(last_event_id)
    live, inbox, watcher = await _connect(request, runtime, account, everything=False)
    try:
        if not await live.follow(watcher, video_id):
            raise NotFoundError("video", video_id)
    except BaseException:
        live.disconnect(watcher)
        raise
    return _response(runtime, _events(live, watcher, inbox))


@router.get(
    "/api/stream",
    response_class=EventSourceResponse,
    responses={**_STREAM_RESPONSES, **documented(400, 401, 429)},
    summary="Live updates of all your videos (Server-Sent Events)",
    description=(
        "The videos `GET /api/videos` lists for the caller (an admin's: everyone's). On connect "
        "it sends the unfinished ones; with `Last-Event-ID`, also every video that may have "
        "changed since that event."
    ),
)
async def all_videos_stream(
    request: Request,
    account: CurrentAccount,
    runtime: RuntimeDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    since = _since(last_event_id)
    live, inbox, watcher = await _connect(request, runtime, account, everything=True)
    return _response(runtime, _events(live, watcher, inbox, catch_up=True, since=since))


def _since(last_event_id: str | None) -> datetime | None:
    if last_event_id is None:
        return None
    if not last_event_id.isascii() or not last_event_id.isdigit():
        raise InputError("Last-Event-ID", "must be the id of an event this stream sent")
    return datetime.fromtimestamp(int(last_event_id) / 1000, UTC)


async def _connect(
    request: Request, runtime: Runtime, account: Account, *, everything: bool
) -> tuple[Live, Inbox, Watcher]:
    live: Live = request.app.state.live
    authenticate = authenticator(
        runtime,
        token=bearer_token(request.headers.get("authorization")),
        session=session_of(request.cookies),
    )
    assert authenticate is not None, "CurrentAccount let an anonymous caller through"
    inbox = Inbox()
    try:
        watcher = await live.connect(
            account, authenticate, inbox.put, inbox.close, everything=everything
        )
    except TooManyConnections as exc:
        raise ApiError(
            429, "too_many_connections", str(exc), headers={"Retry-After": "30"}
        ) from None
    return live, inbox, watcher


async def _events(
    live: Live,
    watcher: Watcher,
    inbox: Inbox,
    *,
    catch_up: bool = False,
    since: datetime | None = None,
) -> AsyncIterator[ServerSentEvent]:
    try:
        if catch_up:
            await live.catch_up(watcher, since)
        async for update in inbox.updates():
            yield ServerSentEvent(data=update.data, event=EVENT, id=update.event_id)
    finally:
        live.disconnect(watcher)


def _response(runtime: Runtime, events: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    return EventSourceResponse(
        events,
        ping=runtime.settings.realtime_heartbeat_seconds,
        send_timeout=SEND_TIMEOUT_SECONDS,
    )
