"""How the OpenAI SDK's and its transport's failures become the domain's `ProviderError`s."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import (
    contextmanager,
)
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx2
import openai

from reelforge.domain.upstream import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn every SDK and transport failure inside the block into a `ProviderError`."""
    try:
        yield
    except openai.APIError as exc:
        raise _from_sdk(exc) from exc
    except httpx2.TransportError as exc:  # raised mid-body, while streaming a download
        raise _from_transport(exc) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a 2xx body the SDK can't parse
        raise ProviderProtocolError(f"upstream answered with invalid JSON: {exc}") from exc


def _from_sdk(exc: openai.APIError) -> ProviderError:
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        if isinstance(cause, httpx2.TransportError):
            return _from_transport(cause)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderTimeout("upstream did not answer in time")
        return ProviderTimeout(f"connection to upstream failed: {cause or exc}")
    # APIResponseValidationError and any other answer we could not read.
    status = getattr(exc, "status_code", None)
    return ProviderProtocolError(exc.message, status=status if isinstance(status, int) else None)


def _from_transport(exc: httpx2.TransportError) -> ProviderError:
    detail = str(exc) or type(exc).__name__
    # Nothing was sent when connecting (or waiting for a pooled connection) failed.
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return ProviderUnavailable(f"cannot reach upstream: {detail}")
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderTimeout(f"upstream did not answer in time: {detail}")
    return ProviderTimeout(f"connection to upstream broke: {detail}")


_STATUS_ERRORS: Mapping[int, type[ProviderError]] = {
    401: ProviderAuthError,
    403: ProviderAuthError,
    404: ProviderNotFound,
    # The SDK's own policy treats these as transient; neither was acted on upstream.
    408: ProviderUnavailable,
    409: ProviderUnavailable,
    429: ProviderRateLimited,
}


def _from_status(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    kind = _STATUS_ERRORS.get(status)
    if kind is None:
        kind = ProviderUnavailable if status >= 500 else ProviderRejected
    return kind(
        _status_message(exc),
        status=status,
        code=exc.code,
        param=exc.param if isinstance(exc.param, str) else None,
        retry_after=retry_after_seconds(exc.response.headers),
        request_id=exc.request_id,
    )


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body  # the inner `error` object when upstream sent the protocol's envelope
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds upstream asked us to wait: `retry-after-ms`, else `retry-after` (secs or date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
