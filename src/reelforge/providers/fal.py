"""FalProvider: fal's video models through fal's queue REST protocol, on httpx.

Not on the `fal-client` SDK: it builds every queue URL as `https://{FAL_QUEUE_RUN_HOST}/…` from
an environment variable read at import, so it cannot be pointed at a configurable (or loopback
plain-HTTP) base URL, and its submit retries 408/409/429 by itself, which could start a second
paid job. The protocol (docs/providers.md cites it):

- submit: `POST {base}/{endpoint id}` with the model's JSON input -> `{"request_id", …}`
- status: `GET {base}/{owner}/{alias}/requests/{id}/status?logs=1` -> `IN_QUEUE` (with
  `queue_position`), `IN_PROGRESS` (with `logs`) or `COMPLETED` (maybe with `error`)
- result: `GET {base}/{owner}/{alias}/requests/{id}` -> the model's output, `video.url`
- cancel: `PUT {base}/{owner}/{alias}/requests/{id}/cancel`

fal has no list of jobs, no delete and no thumbnails: `list` is empty (an unknown create outcome
is submitted again), `delete` cancels, and previews are made here from the downloaded video.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx2

from reelforge.domain import catalog
from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import (
    CreateRequest,
    ProviderError,
    ProviderNotFound,
    ProviderProtocolError,
    ProviderRejected,
    UpstreamPage,
    UpstreamStatus,
    UpstreamVideo,
    Variant,
)
from reelforge.providers.base import ContentStream, ListOrder
from reelforge.providers.fal_models import app_of, submission
from reelforge.providers.http_errors import error_for_status, from_transport, retry_after
from reelforge.providers.local import BytesStream, FileStream, Previews, scratch_file

DEFAULT_BASE_URL = "https://queue.fal.run"
DEFAULT_TIMEOUT = httpx2.Timeout(60.0, connect=5.0)
# fal reports no percentage while a model runs; this is what "running" shows as.
RUNNING_PROGRESS = 50
# A request id no one has.
_PROBE = "fal-ai/veo3/requests/00000000-0000-0000-0000-000000000000/status"


@dataclass(frozen=True)
class _Handle:
    """What our upstream id carries: where the request lives, and what was asked."""

    app: str
    request_id: str
    size: str
    seconds: str

    def encode(self) -> str:
        return "|".join((self.app, self.request_id, self.size, self.seconds))

    @classmethod
    def decode(cls, video_id: str) -> _Handle:
        parts = video_id.split("|")
        if len(parts) != 4 or not all(parts):
            raise ProviderRejected(
                f"not a fal video id: {video_id!r}", code="invalid_value", param="video_id"
            )
        return cls(*parts)

    @property
    def path(self) -> str:
        return f"/{self.app}/requests/{self.request_id}"

    def view(self, status: UpstreamStatus, progress: int) -> UpstreamVideo:
        return UpstreamVideo(
            id=self.encode(),
            status=status,
            model=self.app,
            size=self.size,
            seconds=self.seconds,
            progress=progress,
        )


class FalProvider:
    """A `Provider` for fal's queue."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        spec: ProviderSpec | None = None,
        timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT,
        http_client: httpx2.AsyncClient | None = None,
        webhook_url: str | None = None,
    ) -> None:
        self._spec = spec or catalog.provider("fal")
        # fal POSTs here when a request ends (`?fal_webhook=`); the engine still polls as a net.
        self._submit_params = {"fal_webhook": webhook_url} if webhook_url else None
        self._client = http_client or httpx2.AsyncClient(timeout=timeout)
        self._base = base_url.rstrip("/")
        self._headers = {"authorization": f"Key {api_key}"}
        self._previews = Previews()

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def spec(self) -> ProviderSpec:
        return self._spec

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        endpoint_id, body = submission(request)
        answer = await self._json("POST", f"/{endpoint_id}", json=body, params=self._submit_params)
        request_id = answer.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderProtocolError(f"fal's submit answer has no request_id: {answer!r}")
        handle = _Handle(app_of(endpoint_id), request_id, request.size, request.seconds)
        return UpstreamVideo(
            id=handle.encode(),
            status=UpstreamStatus.QUEUED,
            model=request.model,
            size=request.size,
            seconds=request.seconds,
            progress=0,
            prompt=request.prompt,
            created_at=utcnow(),
        )

    async def remix(self, video_id: str, prompt: str) -> UpstreamVideo:
        raise _unsupported("remix")

    async def edit(self, video_id: str, prompt: str) -> UpstreamVideo:
        raise _unsupported("edit")

    async def extend(self, video_id: str, prompt: str, seconds: str) -> UpstreamVideo:
        raise _unsupported("extend")

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        handle = _Handle.decode(video_id)
        status = await self._json("GET", f"{handle.path}/status", params={"logs": "1"})
        state = status.get("status")
        if state == "IN_QUEUE":
            position = status.get("queue_position")
            return replace(
                handle.view(UpstreamStatus.QUEUED, 0),
                queue_position=position if isinstance(position, int) else None,
            )
        if state == "IN_PROGRESS":
            return replace(
                handle.view(UpstreamStatus.IN_PROGRESS, RUNNING_PROGRESS),
                log_message=_last_log(status.get("logs")),
            )
        if state != "COMPLETED":
            raise ProviderProtocolError(f"unknown fal status {state!r}")
        error = status.get("error")
        if error:
            code = status.get("error_type")
            return handle.view(UpstreamStatus.FAILED, 0).with_error(
                str(code or "video_generation_failed"), str(error)
            )
        try:
            url = await self._video_url(handle)
        except ProviderRejected as rejected:
            # The request ran and its result is an error (a 4xx from the result endpoint).
            return handle.view(UpstreamStatus.FAILED, 0).with_error(
                rejected.code or "video_generation_failed", rejected.message
            )
        gone = await self._expired(url)
        return replace(
            handle.view(UpstreamStatus.COMPLETED, 100),
            completed_at=utcnow(),
            # An output URL that no longer answers has expired: archiving cannot succeed.
            expires_at=utcnow() if gone else None,
        )

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: ListOrder = "desc"
    ) -> UpstreamPage:
        return UpstreamPage(items=(), first_id=None, last_id=None, has_more=False)

    async def delete(self, video_id: str) -> None:
        handle = _Handle.decode(video_id)
        try:
            await self._json("PUT", f"{handle.path}/cancel")
        except ProviderRejected as error:
            # `ALREADY_COMPLETED`: nothing left to stop; its outputs expire on fal's side.
            if error.code != "ALREADY_COMPLETED":
                raise

    def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AbstractAsyncContextManager[ContentStream]:
        return self._open(_Handle.decode(video_id), variant)

    async def check(self) -> None:
        """fal has no cheap authenticated read; the status of a request that does not exist
        answers 401/403 to a bad key, and some other 4xx (not found) to a good one."""
        try:
            await self._json("GET", "/" + _PROBE)
        except (ProviderNotFound, ProviderRejected):
            return

    async def aclose(self) -> None:
        await self._client.aclose()

    # Plumbing.

    @asynccontextmanager
    async def _open(self, handle: _Handle, variant: Variant) -> AsyncIterator[ContentStream]:
        key = handle.encode()
        if variant is not Variant.VIDEO and (made := self._previews.get(key)) is not None:
            yield BytesStream(made[variant], variant)
            return
        url = await self._video_url(handle)
        async with scratch_file() as path:
            async with self._download(url) as response, await anyio.open_file(path, "wb") as out:
                stream = _ResponseStream(response)
                content_type = stream.content_type
                async for chunk in stream.aiter_bytes():
                    await out.write(chunk)
            if variant is Variant.VIDEO:
                with contextlib.suppress(ProviderError):
                    await self._previews.make(key, path)  # the previews come next
                yield FileStream(path, content_type)
            else:
                made = await self._previews.make(key, path)
                yield BytesStream(made[variant], variant)

    @asynccontextmanager
    async def _download(self, url: str) -> AsyncIterator[httpx2.Response]:
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _status_error(response, expired=response.status_code in _GONE)
                yield response
        except httpx2.TransportError as exc:
            raise from_transport(exc) from exc

    async def _video_url(self, handle: _Handle) -> str:
        result = await self._json("GET", handle.path)
        video = result.get("video")
        url = video.get("url") if isinstance(video, Mapping) else None
        if not isinstance(url, str) or not url:
            raise ProviderProtocolError(f"fal's result has no video.url: {_preview(result)}")
        return url

    async def _expired(self, url: str) -> bool:
        try:
            response = await self._client.head(url)
        except httpx2.TransportError as exc:
            raise from_transport(exc) from exc
        return response.status_code in _GONE

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._client.request(
                method, self._base + path, headers=self._headers, **kwargs
            )
        except httpx2.TransportError as exc:
            raise from_transport(exc) from exc
        if response.status_code >= 400:
            raise _status_error(response)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderProtocolError(f"fal answered with invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ProviderProtocolError(f"fal answered with {_preview(body)}, not an object")
        return body


_GONE = frozenset({403, 404, 410})


def _last_log(logs: object) -> str | None:
    """The newest message in a status answer's `logs` (a list of `{message, level, source,
    timestamp}`, oldest first), if it has one."""
    if not isinstance(logs, list):
        return None
    for entry in reversed(logs):
        message = entry.get("message") if isinstance(entry, dict) else None
        if isinstance(message, str) and message.strip():
            return message
    return None


class _ResponseStream:
    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    @property
    def content_type(self) -> str:
        value = self._response.headers.get("content-type", "").split(";")[0].strip()
        return value or Variant.VIDEO.default_content_type

    @property
    def content_length(self) -> int | None:
        value = self._response.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                received += len(chunk)
                yield chunk
        except httpx2.TransportError as exc:
            raise from_transport(exc) from exc
        expected = self.content_length
        if expected is not None and received != expected:
            raise from_transport(
                httpx2.ReadError(f"download ended after {received} of {expected} bytes")
            )


def _status_error(response: httpx2.Response, *, expired: bool = False) -> ProviderError:
    """fal's error answer: `{"detail": "…"}` or a list of `{"loc", "msg", "type"}`."""
    message, param, code = _detail(response)
    code = code or response.headers.get("x-fal-error-type")
    if expired:
        code = "expired"
        message = f"the output URL no longer answers ({response.status_code}): {message}"
    return error_for_status(
        response.status_code,
        message,
        code=code,
        param=param,
        retry_after=retry_after(response.headers),
        request_id=response.headers.get("x-fal-request-id"),
    )


def _detail(response: httpx2.Response) -> tuple[str, str | None, str | None]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return (response.text.strip()[:500] or response.reason_phrase), None, None
    if not isinstance(body, dict):
        return _preview(body), None, None
    detail = body.get("detail")
    code = body.get("error_type") or body.get("status")
    code = code if isinstance(code, str) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
        first = detail[0]
        loc = first.get("loc")
        param = str(loc[-1]) if isinstance(loc, list) and loc else None
        kind = first.get("type")
        return (
            str(first.get("msg") or detail),
            param,
            code or (kind if isinstance(kind, str) else None),
        )
    if isinstance(detail, str) and detail:
        return detail, None, code
    return _preview(body), None, code


def _unsupported(action: str) -> ProviderRejected:
    return ProviderRejected(f"fal's models here cannot {action} a video", code="unsupported")


def _preview(obj: object) -> str:
    text = repr(obj)
    return text[:200] + ("…" if len(text) > 200 else "")
