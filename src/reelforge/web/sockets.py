"""The guide's socket.io protocol (its websocket.service.ts) on python-socketio: clients emit
`subscribe:video` / `unsubscribe:video` with a video id, the server emits `video:update` with
`{videoId, ...}` (the video as `GET /api/videos/{id}` has it in `data`).

Beyond the guide: a client proves who it is when it connects (an API key or JWT as
`auth: {token}` or an `Authorization: Bearer` header, or the session cookie), may hold only so
many connections, and subscribing to a video it may not see does nothing at all, exactly as for
an id that doesn't exist. The default same-origin check stays on, so another site's page can't
open a socket riding on a visitor's session cookie. Updates come from `web.live` (fed by the bus,
in every process), so no Redis manager is needed across processes.
"""

from __future__ import annotations

from typing import Any

import socketio
from fastapi import FastAPI

from reelforge.domain.accounts import Account
from reelforge.runtime import Runtime
from reelforge.web.callers import authenticator, bearer_token, cookies_of, session_of
from reelforge.web.live import Live, TooManyConnections, Update, Watcher

PATH = "/socket.io"
UPDATE = "video:update"
# Longer than any video id we make; anything else is not an id and is ignored.
MAX_ID_LENGTH = 80


def socket_app(app: FastAPI) -> socketio.ASGIApp:
    """The socket.io endpoint of `app` (mount it at PATH); it reads the runtime and the live
    updates from `app.state` once the lifespan has opened them."""
    server = socketio.AsyncServer(
        async_mode="asgi",
        # One client's events run in order: an unsubscribe never overtakes its subscribe.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    watchers: dict[str, Watcher] = {}

    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        runtime: Runtime = app.state.runtime
        live: Live = app.state.live
        token = auth.get("token") if isinstance(auth, dict) else None
        authenticate = authenticator(
            runtime,
            token=token
            if isinstance(token, str) and token
            else bearer_token(environ.get("HTTP_AUTHORIZATION")),
            session=session_of(cookies_of(environ.get("HTTP_COOKIE"))),
        )
        if authenticate is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized: send an API key or token as auth.token, or the session cookie"
            )
        account: Account | None = await authenticate()
        if account is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized: invalid, expired or revoked credentials"
            )

        async def send(update: Update) -> None:
            await server.emit(UPDATE, update.payload, to=sid)

        async def close() -> None:
            await server.disconnect(sid)

        try:
            watchers[sid] = live.connect(account, authenticate, send, close)
        except TooManyConnections as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None

    async def subscribe(sid: str, video_id: object = None) -> None:
        watcher = watchers.get(sid)
        if watcher is not None and _is_id(video_id):
            assert isinstance(video_id, str)
            live: Live = app.state.live
            await live.follow(watcher, video_id)

    async def unsubscribe(sid: str, video_id: object = None) -> None:
        watcher = watchers.get(sid)
        if watcher is not None and _is_id(video_id):
            assert isinstance(video_id, str)
            live: Live = app.state.live
            live.unfollow(watcher, video_id)

    async def disconnect(sid: str, reason: object = None) -> None:
        watcher = watchers.pop(sid, None)
        if watcher is not None:
            live: Live = app.state.live
            live.disconnect(watcher)

    server.on("connect", connect)
    server.on("subscribe:video", subscribe)
    server.on("unsubscribe:video", unsubscribe)
    server.on("disconnect", disconnect)
    return socketio.ASGIApp(server, socketio_path=PATH)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH
