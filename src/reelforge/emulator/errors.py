"""The protocol's error envelope, the exceptions that produce it, and the app's error handlers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from reelforge.domain.catalog import CatalogError

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"

# Emulator choices where the real API's code is unknown (documented in docs/emulator.md).
NOT_READY = "video_not_ready"
FAILED = "video_failed"
EXPIRED = "video_expired"


class EmulatorError(Exception):
    """Answered as `{"error": {"message", "type", "param", "code"}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(
    message: str, *, type: str = INVALID_REQUEST, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# --- the errors the routes raise, with the real API's wording where it is known --------------


def invalid_value(param: str, message: str) -> EmulatorError:
    return EmulatorError(400, message, param=param, code="invalid_value")


def from_catalog(exc: CatalogError) -> EmulatorError:
    return invalid_value(exc.param, str(exc))


def choice_error(param: str, value: object, allowed: tuple[str, ...]) -> EmulatorError:
    """The catalog's "Invalid value: 'x'. Supported values are: …" message for any enum."""
    return from_catalog(CatalogError(param, value, allowed))


def missing(param: str) -> EmulatorError:
    return EmulatorError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def invalid_type(param: str, expected: str, got: str) -> EmulatorError:
    return EmulatorError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def unknown_parameter(param: str) -> EmulatorError:
    return EmulatorError(
        400, f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter"
    )


def not_found(kind: str, identifier: str, param: str | None = None) -> EmulatorError:
    return EmulatorError(
        404, f"No {kind} found with id '{identifier}'.", param=param, code="not_found"
    )


def bad_json() -> EmulatorError:
    return EmulatorError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
    )


def server_error(status: int = 500, headers: Mapping[str, str] | None = None) -> EmulatorError:
    return EmulatorError(
        status,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        headers=headers,
    )


def rate_limited(message: str, headers: Mapping[str, str]) -> EmulatorError:
    return EmulatorError(429, message, type="requests", code="rate_limit_exceeded", headers=headers)


# --- handlers: every failure leaves as the protocol's envelope, never a bare 500 -------------


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EmulatorError, _emulator_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _emulator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmulatorError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (404, 405):
        # The real API's wording for a path it does not serve (also for a wrong method).
        message = f"Invalid URL ({request.method} {request.url.path})"
        status = 404 if exc.status_code == 404 else 405
    else:
        message, status = str(exc.detail), exc.status_code
    return EmulatorError(status, message).response()


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    param = ".".join(location) or None
    message = f"Invalid '{param}': {first.get('msg', 'invalid value')}." if param else "Invalid."
    return EmulatorError(400, message, param=param, code="invalid_value").response()


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("emulator: unexpected error on %s %s", request.method, request.url.path)
    return server_error().response()
