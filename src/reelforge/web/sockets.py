"""The guide's socket.io protocol (its websocket.service.ts) on python-socketio: clients emit
`subscribe:video` / `unsubscribe:video` with a video id, the server emits `video:update` with
`{videoId, ...}` (the video as `GET /api/videos/{id}` has it in `data`).

Beyond the guide: a client proves who it is when it connects (an API key or JWT as
`auth: {token}` or an `Authorization: Bearer` header, or the session cookie), may hold only so
many connections, and subscribing to a video it may not see does nothing at all, exactly as for
an id that doesn't exist. Only the studio's own origin and REELFORGE_CORS_ORIGINS may open a
socket (`OriginGate`), so another site's page can't ride on a visitor's session cookie; the app's
CORS middleware sends the Access-Control headers, engine.io's own CORS handling is off so they are
sent once. Updates come from `web.live` (fed by the bus, in every process), so no Redis manager is
needed across processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import socketio
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from reelforge.domain.accounts import Account
from reelforge.runtime import Runtime
from reelforge.web.callers import authenticator, bearer_token, cookies_of, session_of
from reelforge.web.live import Live, TooManyConnections, Update, Watcher

PATH = "/socket.io"
UPDATE = "video:update"
# Longer than any video id we make; anything else is not an id and is ignored.
MAX_ID_LENGTH = 80


def socket_app(app: FastAPI, cors_origins: Iterable[str] = ()) -> ASGIApp:
    """The socket.io endpoint of `app` (mount it at PATH), open to pages of `cors_origins` too;
    it reads the runtime and the live updates from `app.state` once the lifespan opened them."""
    server = socketio.AsyncServer(
        async_mode="asgi",
        # [] turns engine.io's CORS off (no origin check, no headers): OriginGate checks the
        # origin, and the CORS middleware answers preflights and adds the headers.
        cors_allowed_origins=[],
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
            watchers[sid] = await live.connect(account, authenticate, send, close)
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
    return OriginGate(socketio.ASGIApp(server, socketio_path=PATH), cors_origins)


class OriginGate:
    """Refuses a request or websocket whose Origin is neither the server's own nor one of the
    configured ones: browsers send Origin on both, and a websocket has no CORS to stop it."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.admits(Headers(scope=scope)):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                refusal = PlainTextResponse("origin not allowed", status_code=403)
                await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def admits(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is None or origin in self.origins:
            return True  # not a browser page, or a configured front end
        # Same origin: a page of this server's (through a proxy, the host the browser used).
        host = headers.get("x-forwarded-host", headers.get("host", "")).split(",")[0].strip()
        return bool(host) and urlsplit(origin).netloc == host


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH
