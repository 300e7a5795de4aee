"""How the OpenAI SDK's and its transport's failures become the domain's `ProviderError`s."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import (
    contextmanager,
)

import httpx2
import openai

from reelforge.domain.upstream import (
    ProviderError,
    ProviderProtocolError,
    ProviderTimeout,
)
from reelforge.providers.http_errors import error_for_status, from_transport, retry_after


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn every SDK and transport failure inside the block into a `ProviderError`."""
    try:
        yield
    except openai.APIError as exc:
        raise _from_sdk(exc) from exc
    except httpx2.TransportError as exc:  # raised mid-body, while streaming a download
        raise from_transport(exc) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a 2xx body the SDK can't parse
        raise ProviderProtocolError(f"upstream answered with invalid JSON: {exc}") from exc


def _from_sdk(exc: openai.APIError) -> ProviderError:
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        if isinstance(cause, httpx2.TransportError):
            return from_transport(cause)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderTimeout("upstream did not answer in time")
        return ProviderTimeout(f"connection to upstream failed: {cause or exc}")
    # APIResponseValidationError and any other answer we could not read.
    status = getattr(exc, "status_code", None)
    return ProviderProtocolError(exc.message, status=status if isinstance(status, int) else None)


def _from_status(exc: openai.APIStatusError) -> ProviderError:
    return error_for_status(
        exc.status_code,
        _status_message(exc),
        code=exc.code,
        param=exc.param if isinstance(exc.param, str) else None,
        retry_after=retry_after(exc.response.headers),
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
