"""The emulator's ASGI app: the Videos API routes under /v1 and the /_emulator control surface."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelforge.domain.upstream import POLL_AFTER_HEADER
from reelforge.emulator.bodies import read_body
from reelforge.emulator.downloads import content_response
from reelforge.emulator.errors import (
    EmulatorError,
    choice_error,
    install_error_handlers,
    invalid_type,
)
from reelforge.emulator.jobs import Renderer
from reelforge.emulator.requests import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from reelforge.emulator.service import Emulator
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.store import Job, Variant

CREATING_ROUTES = frozenset({"videos.create", "videos.remix", "videos.edit", "videos.extend"})


def create_emulator_app(
    settings: EmulatorSettings | None = None, *, renderer: Renderer | None = None
) -> FastAPI:
    """The emulator as an ASGI app; point an OpenAI SDK at `<root>/v1`.

    `app.state.emulator` is the running Emulator; call its `close()` when the app is mounted
    inside another one (mounted apps receive no lifespan shutdown).
    """
    settings = settings or EmulatorSettings()
    if renderer is None:
        from reelforge.emulator.render import render

        renderer = render
    emulator = Emulator(settings, renderer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        emulator.close()

    app = FastAPI(
        title="Reelforge emulator",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.emulator = emulator
    install_error_handlers(app)
    app.include_router(_videos_router(emulator))
    app.include_router(_control_router(emulator))
    app.add_middleware(_ProtocolHeaders, emulator=emulator)
    return app


# --- cross-cutting: request ids, timing headers, stats -------------------------------------


class _ProtocolHeaders:
    """Adds `x-request-id` and OpenAI's timing headers to every answer and counts calls."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = f"req_{secrets.token_hex(16)}"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = int((time.perf_counter() - started) * 1000)
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-request-id", request_id.encode()),
                    (b"openai-version", b"2020-10-01"),
                    (b"openai-processing-ms", str(elapsed_ms).encode()),
                ]
                message = {**message, "headers": headers}
                self._count(scope, message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _count(self, scope: Scope, status: int) -> None:
        route = scope.get("route")
        name = getattr(route, "name", None)
        if isinstance(name, str) and name.startswith("videos."):
            self.emulator.stats.record(name, status)
        elif route is None and _route_path(scope).startswith("/v1"):
            self.emulator.stats.record("unmatched", status)


def _route_path(scope: Scope) -> str:
    """The path below any mount point (mounted apps see their prefix in `root_path`)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _mask(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def _check_key(request: Request, expected: str | None) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise EmulatorError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as "
            "the password field (with blank username) if you're accessing the API from your "
            "browser and are prompted for a username and password. You can obtain an API key "
            "from https://platform.openai.com/account/api-keys.",
        )
    if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
        raise EmulatorError(
            401,
            f"Incorrect API key provided: {_mask(token)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def _json(data: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, headers=headers)


def _video_response(emulator: Emulator, job: Job, video: dict[str, Any]) -> JSONResponse:
    headers: dict[str, str] = {}
    poll_after = emulator.settings.poll_after_ms
    if video["status"] in ("queued", "in_progress") and poll_after:
        headers[POLL_AFTER_HEADER] = str(poll_after)
    return _json(video, headers)


# --- the Videos API ------------------------------------------------------------------------


def _videos_router(emulator: Emulator) -> APIRouter:
    settings = emulator.settings
    expected_key = settings.api_key.get_secret_value() if settings.api_key else None

    async def guard(request: Request) -> None:
        """Auth first (as OpenAI does), then the injected faults that precede any work."""
        _check_key(request, expected_key)
        route = request.scope.get("route")
        name = getattr(route, "name", "")
        emulator.faults.check_burst(name)
        if name in CREATING_ROUTES:
            emulator.faults.check_rate_limit()

    router = APIRouter(prefix="/v1/videos", dependencies=[Depends(guard)])
    limit = settings.max_upload_bytes

    async def answer_created(job: Job) -> JSONResponse:
        video = job.created_view  # what upstream decided at creation time
        delay = emulator.intake.late_create_delay(job.tags)
        if delay:
            # The job exists and runs; only the answer is late (a client timeout loses it).
            await anyio.sleep(delay)
        return _video_response(emulator, job, video)

    @router.post("", name="videos.create")
    async def create(request: Request) -> Response:
        job = await emulator.intake.create(await read_body(request, limit))
        return await answer_created(job)

    @router.get("", name="videos.list")
    async def list_videos(request: Request) -> Response:
        query = request.query_params
        limit_value = _list_limit(query.get("limit"))
        order = query.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise choice_error("order", order, ("asc", "desc"))
        page = emulator.list_videos(
            after=query.get("after") or None, limit=limit_value, descending=order == "desc"
        )
        data = [job.to_video() for job in page.jobs]
        return _json(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": page.has_more,
            }
        )

    @router.post("/edits", name="videos.edit")
    async def edit(request: Request) -> Response:
        job = await emulator.intake.edit(await read_body(request, limit))
        return await answer_created(job)

    @router.post("/extensions", name="videos.extend")
    async def extend(request: Request) -> Response:
        job = await emulator.intake.extend(await read_body(request, limit))
        return await answer_created(job)

    @router.post("/characters", name="videos.create_character")
    async def create_character(request: Request) -> Response:
        character = emulator.create_character(await read_body(request, limit))
        return _json(character.to_json())

    @router.get("/characters/{character_id}", name="videos.get_character")
    async def get_character(character_id: str) -> Response:
        return _json(emulator.get_character(character_id).to_json())

    @router.get("/{video_id}", name="videos.retrieve")
    async def retrieve(video_id: str) -> Response:
        job = emulator.retrieve(video_id)
        return _video_response(emulator, job, job.to_video())

    @router.delete("/{video_id}", name="videos.delete")
    async def delete(video_id: str) -> Response:
        emulator.delete(video_id)
        return _json({"id": video_id, "object": "video.deleted", "deleted": True})

    @router.get("/{video_id}/content", name="videos.content")
    async def content(video_id: str, request: Request) -> Response:
        raw_variant = request.query_params.get("variant") or Variant.VIDEO.value
        try:
            variant = Variant(raw_variant)
        except ValueError:
            raise choice_error("variant", raw_variant, tuple(Variant)) from None
        # Off the loop: with a state or asset directory, the bytes are read from a file.
        job, data = await anyio.to_thread.run_sync(emulator.content, video_id, variant)
        faults = emulator.faults.current()
        return content_response(
            data,
            media_type=variant.media_type,
            range_header=request.headers.get("range"),
            etag=f'"{job.id}-{variant.value}"',
            bytes_per_second=job.tags.slow_download_bps or faults.slow_download_bps,
            truncate_fraction=(
                job.tags.truncate_fraction
                if job.tags.truncate_fraction is not None
                else faults.truncate_downloads
            ),
        )

    @router.post("/{video_id}/remix", name="videos.remix")
    async def remix(video_id: str, request: Request) -> Response:
        job = await emulator.intake.remix(video_id, await read_body(request, limit))
        return await answer_created(job)

    return router


def _list_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIST_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise invalid_type("limit", "an integer", "a string") from None
    if value < 0:
        raise EmulatorError(
            400,
            f"Invalid 'limit': integer below minimum value. Expected a value >= 0, but got "
            f"{value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if value > MAX_LIST_LIMIT:
        raise EmulatorError(
            400,
            f"Invalid 'limit': integer above maximum value. Expected a value <= {MAX_LIST_LIMIT}, "
            f"but got {value} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return value


# --- the control surface (not part of the protocol) ----------------------------------------


def _control_router(emulator: Emulator) -> APIRouter:
    settings = emulator.settings
    expected_key = settings.api_key.get_secret_value() if settings.api_key else None

    async def guard(request: Request) -> None:
        # Open when the emulator accepts any key; otherwise the same key as the protocol.
        if expected_key is not None:
            _check_key(request, expected_key)

    router = APIRouter(prefix="/_emulator", dependencies=[Depends(guard)])

    async def json_object(request: Request) -> dict[str, Any]:
        body = await read_body(request, 1024 * 1024)
        return body.fields

    @router.get("/health", name="control.health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @router.get("/ledger", name="control.ledger")
    async def ledger() -> Response:
        rows = list(emulator.store.ledger_rows())
        billable = sum(
            (Decimal(row["cost"]) for row in rows if row["billable"]), start=Decimal("0")
        )
        return _json(
            {"object": "list", "data": rows, "count": len(rows), "billable_cost": str(billable)}
        )

    @router.get("/stats", name="control.stats")
    async def stats() -> Response:
        return _json(emulator.stats.snapshot() | {"state": emulator.overview()})

    @router.get("/faults", name="control.faults")
    async def get_faults() -> Response:
        return _json(emulator.faults.snapshot())

    @router.put("/faults", name="control.set_faults")
    async def set_faults(request: Request) -> Response:
        changes = await json_object(request)
        try:
            emulator.faults.update(changes)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(part) for part in first["loc"]) or None
            raise EmulatorError(
                400, f"Invalid '{param}': {first['msg']}.", param=param, code="invalid_value"
            ) from None
        return _json(emulator.faults.snapshot())

    @router.post("/reset", name="control.reset")
    async def reset() -> Response:
        emulator.reset()
        return _json({"reset": True})

    @router.post("/clock", name="control.clock")
    async def clock(request: Request) -> Response:
        fields = await json_object(request)
        advance = fields.get("advance_seconds")
        if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
            raise EmulatorError(
                400,
                "Invalid 'advance_seconds': expected a number >= 0.",
                param="advance_seconds",
                code="invalid_value",
            )
        evicted = emulator.advance_clock(float(advance))
        return _json(
            {
                "offset_seconds": emulator.clock.offset,
                "now": emulator.clock.now(),
                "evicted": evicted,
            }
        )

    @router.get("/webhooks", name="control.webhooks")
    async def webhooks() -> Response:
        return _json({"object": "list", "data": emulator.webhooks.deliveries()})

    return router
