"""Every request at the edge, before its route reads it: the body limited, the caller
authenticated, NUL characters refused, and every refusal delivered.

Every router is built with `EdgeRoute`, so these rules hold for each route without a copy in
any of them:

- The body is limited per route (`max_body`, default `DEFAULT_MAX_BODY_BYTES`): a declared
  `Content-Length` over the limit is a 413 before a byte is read, and the bytes actually read
  are counted, so a chunked body can't go past it either.
- A route that needs an account authenticates before its body is read or parsed: an anonymous
  body costs nothing but the refusal.
- A NUL character (which PostgreSQL text can't hold, and no field of ours means) in a path
  parameter, a query parameter, a header or a JSON body is a 400 naming the field, on every database
  alike. Multipart text fields go through the same `refuse_nul` in `api/requests.py`.
- A refusal answered before the body was read (a 401, a 429 …) reads the rest of the body
  (within the route's limit) before it is sent: a server that answers while the client is still
  sending, and then closes, leaves the client a reset connection instead of the answer (the
  official SDK's APIConnectionError where a RateLimitError was due).

Starlette's own `RequestBodyLimitMiddleware` (FastAPI's `max_body_size`) answers a body declared
too long with its own plain-text 413 in place of whatever the app answers, outside the error
shapes of /api and /v1; so the limit is counted here and refused through `ApiError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import Message, Receive

from reelforge.api.auth import current_account, optional_account, unauthorized
from reelforge.api.errors import ApiError
from reelforge.domain.errors import InputError
from reelforge.services.read_cache import one_look

DEFAULT_MAX_BODY_BYTES = 64 * 1024
# The OpenAPI extension a route declares its own limit in (`max_body`), documented with it.
MAX_BODY_EXTENSION = "x-max-body-bytes"
_NUL = "\x00"
_RAW_NUL = b"\x00"
_JSON_NUL = b"\\u0000"


def max_body(limit: int) -> dict[str, Any]:
    """`openapi_extra` for a route whose body may be larger (or must be smaller) than usual."""
    return {MAX_BODY_EXTENSION: limit}


def refuse_nul(field: str, value: object) -> None:
    """InputError naming the first string in `value` (or in its keys) holding a NUL character."""
    if isinstance(value, str):
        if _NUL in value:
            raise InputError(field, "must not contain NUL characters (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            refuse_nul(name, key)
            refuse_nul(name, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_nul(f"{field}.{index}" if field else str(index), item)


class BodyTooLargeError(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, "payload_too_large", f"The request body is over this route's {limit} bytes"
        )


class _LimitedBody:
    """The request's `receive`, counting body bytes against the limit and noting the end."""

    def __init__(self, receive: Receive, limit: int, declared: int | None) -> None:
        self._receive = receive
        self.limit = limit
        self.declared = declared
        self.read = 0
        self.done = declared == 0

    async def __call__(self) -> Message:
        if self.declared is not None and self.declared > self.limit:
            raise BodyTooLargeError(self.limit)
        message = await self._receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
            if self.read > self.limit:
                raise BodyTooLargeError(self.limit)
        elif message["type"] == "http.disconnect":
            self.done = True
        return message

    async def drain(self) -> None:
        """Read what the client is still sending, unless it is over the limit (then close)."""
        if self.read > self.limit or (self.declared is not None and self.declared > self.limit):
            return
        try:
            while not self.done:
                await self()
        except BodyTooLargeError:
            return


class EdgeRoute(APIRoute):
    """An APIRoute that applies this module's rules before FastAPI reads the request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit = int((self.openapi_extra or {}).get(MAX_BODY_EXTENSION, DEFAULT_MAX_BODY_BYTES))
        needs_account = _depends_on(self.dependant, current_account)

        async def edge(request: Request) -> Response:
            body = _LimitedBody(request.receive, limit, _content_length(request))
            guarded = Request(request.scope, body)
            with one_look():
                return await _guarded(guarded, body)

        async def _guarded(guarded: Request, body: _LimitedBody) -> Response:
            try:
                for name, value in guarded.path_params.items():
                    refuse_nul(name, value)
                # HTTP parsers refuse NUL in headers, but not every ASGI server is behind one.
                for raw_name, raw_value in guarded.scope["headers"]:
                    if _RAW_NUL in raw_name or _RAW_NUL in raw_value:
                        name = raw_name.decode("latin-1")
                        refuse_nul(name, name)
                        refuse_nul(name, raw_value.decode("latin-1"))
                if guarded.scope["query_string"]:
                    for name, value in guarded.query_params.multi_items():
                        refuse_nul(name, name)
                        refuse_nul(name, value)
                if body.declared is not None and body.declared > limit:
                    raise BodyTooLargeError(limit)
                if needs_account:
                    await _authenticate(guarded)
                if _is_json(guarded):
                    _refuse_nul_in_json(await guarded.body())
                return await handler(guarded)
            except Exception:
                await body.drain()
                raise

        return edge


async def _authenticate(request: Request) -> None:
    # optional_account keeps what it found on request.state: the route's own dependency
    # then answers from there instead of checking the credential twice.
    if await optional_account(request, request.app.state.runtime) is None:
        raise unauthorized("Authentication required: send an API key or token as Bearer")


def _refuse_nul_in_json(raw: bytes) -> None:
    # JSON can carry NUL only escaped; the parse that names the field runs only when one may be.
    if _JSON_NUL not in raw:
        return
    try:
        document = json.loads(raw)
    except ValueError:
        return  # the route's own parser answers malformed JSON
    refuse_nul("", document)


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(
        dependency.call is call or _depends_on(dependency, call)
        for dependency in dependant.dependencies
    )


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    # Past 18 digits it is over every limit; int() of a long enough string is itself refused.
    return int(value) if len(value) <= 18 else 10**18
