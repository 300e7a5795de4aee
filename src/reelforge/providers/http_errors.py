"""HTTP answers and transport failures as `ProviderError`s, for adapters speaking plain HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import httpx2

from reelforge.domain.upstream import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)

STATUS_ERRORS: Mapping[int, type[ProviderError]] = {
    401: ProviderAuthError,
    403: ProviderAuthError,
    404: ProviderNotFound,
    # Neither was acted on upstream; both pass.
    408: ProviderUnavailable,
    409: ProviderUnavailable,
    429: ProviderRateLimited,
}


def error_for_status(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> ProviderError:
    kind = STATUS_ERRORS.get(status)
    if kind is None:
        kind = ProviderUnavailable if status >= 500 else ProviderRejected
    return kind(
        message,
        status=status,
        code=code,
        param=param,
        retry_after=retry_after,
        request_id=request_id,
    )


def from_transport(exc: Exception) -> ProviderError:
    """A connection that failed (nothing sent) or broke (the request may have been acted on)."""
    detail = str(exc) or type(exc).__name__
    connect = (
        httpx2.ConnectError,
        httpx2.ConnectTimeout,
        httpx2.PoolTimeout,
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
    )
    if isinstance(exc, connect):
        return ProviderUnavailable(f"cannot reach upstream: {detail}")
    if isinstance(exc, httpx2.TimeoutException | httpx.TimeoutException):
        return ProviderTimeout(f"upstream did not answer in time: {detail}")
    return ProviderTimeout(f"connection to upstream broke: {detail}")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: `retry-after-ms`, `retry-after` (seconds or an HTTP date), else
    `x-ratelimit-reset`."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset))
        except ValueError:
            return None
    return None
