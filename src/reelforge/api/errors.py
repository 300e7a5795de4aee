"""Errors on the wire: domain errors to status codes, in the guide's envelope or the protocol's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ExceptionHandler

from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.quotas import LimitExceededError
from reelforge.logs import get_logger
from reelforge.storage import ObjectNotFoundError, StorageError, StorageFullError

log = get_logger("reelforge.api")

GATEWAY_PREFIX = "/v1/"
# What a 503 for unreachable storage asks clients to wait before trying again.
STORAGE_RETRY_AFTER_SECONDS = 30

# The protocol's `type` of a refusal that only a new period or more budget ends.
QUOTA_TYPE = "insufficient_quota"
# The protocol's `type` for each status, as OpenAI's own errors carry it.
_PROTOCOL_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "requests",
    500: "server_error",
    503: "server_error",
    507: "server_error",
}


@dataclass(frozen=True)
class ProtocolForm:
    """How an error reads on /v1 where the protocol names it otherwise than /api does."""

    code: str | None
    type: str | None = None


class ApiError(Exception):
    """An HTTP answer other than success, raised from routes and dependencies."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        protocol: ProtocolForm | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        self.protocol = protocol
        super().__init__(message)


class ErrorEnvelope(BaseModel):
    """The guide's error shape on /api: `error` is text a page can show as it is (the guide
    renders `response.data.error`), with the machine-readable code and field beside it."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    success: Literal[False] = False
    error: str = Field(
        description="What went wrong, for people: one sentence, starting with the field's "
        "name when one field is at fault.",
        examples=["prompt: is required and must not be blank"],
    )
    code: str = Field(
        description="What went wrong, for programs, e.g. `invalid_value`, `unknown_parameter`, "
        "`invalid_request`, `not_found`, `unauthorized`, `quota_exceeded`.",
        examples=["invalid_value"],
    )
    field: str | None = Field(
        default=None, description="The request field at fault, if one is.", examples=["prompt"]
    )


class ProtocolErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ProtocolError(BaseModel):
    """The OpenAI error shape on /v1."""

    error: ProtocolErrorBody


def _is_gateway(request: Request) -> bool:
    return request.url.path.startswith(GATEWAY_PREFIX)


def error_response(request: Request, error: ApiError) -> JSONResponse:
    if _is_gateway(request):
        form = error.protocol or ProtocolForm(error.code)
        body: dict[str, Any] = {
            "error": {
                "message": error.message,
                "type": form.type or _PROTOCOL_TYPES.get(error.status, "invalid_request_error"),
                "param": error.field,
                "code": form.code,
            }
        }
    else:
        body = ErrorEnvelope(error=error.message, code=error.code, field=error.field).model_dump()
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


def documented_protocol(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ProtocolError} for status in statuses}


def install(app: FastAPI) -> None:
    """Register the handlers that give every failure a shape, and never a bare 500."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(request, exc)

    async def input_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputError)
        # /api's `error` is read on its own, so it names the field; /v1's sits beside `param`.
        message = exc.message if _is_gateway(request) else f"{exc.field}: {exc.message}"
        return error_response(request, ApiError(400, "invalid_value", message, field=exc.field))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFoundError)
        # Only the first letter: the id stays exactly as the caller sent it.
        message = str(exc)
        message = message[:1].upper() + message[1:]
        return error_response(request, ApiError(404, "not_found", message))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConflictError)
        return error_response(request, ApiError(409, "conflict", exc.message, field=exc.field))

    async def limit_exceeded(request: Request, exc: Exception) -> JSONResponse:
        # A quota or budget ends with its period, days away: no retry can get past it, so
        # the answer says not to retry (the SDKs obey `x-should-retry`) and promises no wait.
        assert isinstance(exc, LimitExceededError)
        resets = exc.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return error_response(
            request,
            ApiError(
                429,
                exc.code,
                f"{exc.message}; it resets at {resets}",
                headers={"x-should-retry": "false"},
                protocol=ProtocolForm(exc.code, type=QUOTA_TYPE),
            ),
        )

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            return error_response(request, ApiError(400, "invalid_json", "Malformed JSON body"))
        field, message = _first_problem(exc)
        if _is_gateway(request):
            # The protocol answers every invalid parameter with a 400 (the SDK's
            # BadRequestError), never 422.
            code = _protocol_code(exc)
            return error_response(request, ApiError(400, code, message, field=field))
        if any(error.get("type") == "extra_forbidden" for error in exc.errors()):
            unknown = _unknown_field(exc)
            return error_response(
                request,
                ApiError(400, "unknown_parameter", f"{unknown}: unknown field", field=unknown),
            )
        return error_response(request, ApiError(422, "invalid_request", message, field=field))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path, not all of them.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        detail = str(exc.detail)
        return error_response(request, ApiError(exc.status_code, code, detail, headers=headers))

    async def storage_failed(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StorageError)
        if isinstance(exc, ObjectNotFoundError):
            # An object the database names is gone: our bug or lost data, not an outage.
            return await crash(request, exc)
        # The store's own message names paths and buckets: it goes to the log, not the caller.
        log.warning("storage failed", path=request.url.path, error=str(exc)[:500])
        if isinstance(exc, StorageFullError):
            return error_response(
                request,
                ApiError(
                    507,
                    "storage_full",
                    "The server has no room left to store this request; try again later",
                ),
            )
        return error_response(
            request,
            ApiError(
                503,
                "storage_unavailable",
                "The server's storage is unavailable; try again later",
                headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
            ),
        )

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return error_response(request, ApiError(500, "internal_error", "Internal server error"))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(LimitExceededError, limit_exceeded)
    app.add_exception_handler(StorageError, storage_failed)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)


def exception_handlers(app: FastAPI) -> dict[Any, ExceptionHandler]:
    """The handlers `install` gave `app` that its exception middleware runs: all but the
    catch-all, which FastAPI gives to the outermost (server error) middleware."""
    return {
        key: handler
        for key, handler in app.exception_handlers.items()
        if key not in (500, Exception)
    }


def answer_405_with_every_method(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Give the 405 handler the routes to look through (the app's own router holds included
    routers, not their routes)."""
    app.state.allow_routes = tuple(routes)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route offers at the request's path."""
    methods: set[str] = set()
    for route in getattr(request.app.state, "allow_routes", ()):
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return sorted(methods)


def _protocol_code(exc: RequestValidationError) -> str:
    """The protocol's error code for the first problem: missing, of the wrong type, or not a
    value on offer."""
    errors = exc.errors()
    kind = str(errors[0].get("type", "")) if errors else ""
    if kind == "missing":
        return "missing_required_parameter"
    if kind.endswith(("_parsing", "_type")):
        return "invalid_type"
    return "invalid_value"


def _unknown_field(exc: RequestValidationError) -> str:
    """The first field a body had that its model does not know."""
    for error in exc.errors():
        if error.get("type") == "extra_forbidden":
            return _location(error) or "body"
    return "body"


def _location(error: Mapping[str, Any]) -> str | None:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    return ".".join(location) or None


def _first_problem(exc: RequestValidationError) -> tuple[str | None, str]:
    """The first invalid field, by its name in the request, and what is wrong with it."""
    errors = exc.errors()
    if not errors:
        return None, "Invalid request"
    first = errors[0]
    field = _location(first)
    message = str(first.get("msg", "Invalid value"))
    return field, f"{field}: {message}" if field else message
