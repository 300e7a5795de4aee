"""VeoProvider: Google's Veo through the Gemini API, on the official `google-genai` SDK.

- create: `client.aio.models.generate_videos` starts a long-running operation
  (`POST /v1beta/models/{model}:predictLongRunning`); its name is the job's id.
- retrieve: `client.aio.operations.get` (`GET /v1beta/{operation name}`): not done, done with an
  `error`, done with videos, or done with every video removed by the safety filters
  (`raiMediaFilteredCount` and `raiMediaFilteredReasons`): a failure naming the reasons.
- download: `client.aio.files.download` (`GET /v1beta/files/{id}:download?alt=media`) into a
  temporary file, streamed from there; thumbnails and spritesheets are made here (PyAV).

google-genai 3.x runs `generate_videos` on Vertex AI only, hence the `<3` pin. The SDK retries
nothing unless told to (its default is one attempt): the engine owns retries. `http_options`
`base_url` points it at any host, which is how the tests reach a fake over loopback.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from reelforge.domain import catalog
from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import (
    CreateRequest,
    ImageBytes,
    ImageUrl,
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRejected,
    UpstreamPage,
    UpstreamStatus,
    UpstreamVideo,
    Variant,
)
from reelforge.providers.base import ContentStream, ListOrder
from reelforge.providers.http_errors import error_for_status, from_transport
from reelforge.providers.local import BytesStream, FileStream, Previews, scratch_file

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"
DEFAULT_TIMEOUT_MS = 60_000
RUNNING_PROGRESS = 50

# Reelforge's model names -> the Gemini API's.
API_MODELS: Mapping[str, str] = {
    "veo-3.1": "veo-3.1-generate-preview",
    "veo-3.1-fast": "veo-3.1-fast-generate-preview",
}
_ASPECT = {"1280x720": "16:9", "1920x1080": "16:9", "720x1280": "9:16", "1080x1920": "9:16"}
_RESOLUTION = {"1280x720": "720p", "720x1280": "720p", "1920x1080": "1080p", "1080x1920": "1080p"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclass(frozen=True)
class _Handle:
    operation: str
    model: str
    size: str
    seconds: str

    def encode(self) -> str:
        return "|".join((self.operation, self.model, self.size, self.seconds))

    @classmethod
    def decode(cls, video_id: str) -> _Handle:
        parts = video_id.split("|")
        if len(parts) != 4 or not all(parts):
            raise ProviderRejected(
                f"not a Veo video id: {video_id!r}", code="invalid_value", param="video_id"
            )
        return cls(*parts)

    def view(self, status: UpstreamStatus, progress: int) -> UpstreamVideo:
        return UpstreamVideo(
            id=self.encode(),
            status=status,
            model=self.model,
            size=self.size,
            seconds=self.seconds,
            progress=progress,
        )


class VeoProvider:
    """A `Provider` for Veo on the Gemini API."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        spec: ProviderSpec | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
    ) -> None:
        self._spec = spec or catalog.provider("veo")
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(base_url=base_url, timeout=timeout_ms),
        )
        self._previews = Previews()

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def spec(self) -> ProviderSpec:
        return self._spec

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        api_model = API_MODELS.get(request.model)
        if api_model is None:
            raise ProviderRejected(
                f"Veo has no model {request.model!r} here", code="invalid_value", param="model"
            )
        source = types.GenerateVideosSource(
            prompt=request.prompt, image=_image(request.input_reference)
        )
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=int(request.seconds),
            aspect_ratio=_ASPECT[request.size],
            resolution=_RESOLUTION[request.size],
        )
        with _translated():
            operation = await self._client.aio.models.generate_videos(
                model=api_model, source=source, config=config
            )
        if not operation.name:
            raise ProviderProtocolError("Veo's answer names no operation")
        handle = _Handle(operation.name, request.model, request.size, request.seconds)
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
        operation = await self._operation(handle)
        if not operation.done:
            return handle.view(UpstreamStatus.IN_PROGRESS, RUNNING_PROGRESS)
        if operation.error:
            code, message = _operation_error(operation.error)
            return handle.view(UpstreamStatus.FAILED, 0).with_error(code, message)
        response = operation.response or operation.result
        if response is None:
            raise ProviderProtocolError("Veo's finished operation has neither response nor error")
        if not response.generated_videos:
            return handle.view(UpstreamStatus.FAILED, 0).with_error(*_filtered(response))
        return replace(handle.view(UpstreamStatus.COMPLETED, 100), completed_at=utcnow())

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: ListOrder = "desc"
    ) -> UpstreamPage:
        return UpstreamPage(items=(), first_id=None, last_id=None, has_more=False)

    async def delete(self, video_id: str) -> None:
        # The Gemini API has no way to stop or delete an operation; its files expire there.
        _Handle.decode(video_id)

    def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AbstractAsyncContextManager[ContentStream]:
        return self._open(_Handle.decode(video_id), variant)

    async def check(self) -> None:
        with _translated():
            await self._client.aio.models.get(model=API_MODELS[self._spec.default_model])

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()

    # Plumbing.

    async def _operation(self, handle: _Handle) -> types.GenerateVideosOperation:
        with _translated():
            return await self._client.aio.operations.get(
                types.GenerateVideosOperation(name=handle.operation)  # type: ignore[call-arg]
            )

    @asynccontextmanager
    async def _open(self, handle: _Handle, variant: Variant) -> AsyncIterator[ContentStream]:
        key = handle.encode()
        if variant is not Variant.VIDEO and (made := self._previews.get(key)) is not None:
            yield BytesStream(made[variant], variant)
            return
        async with scratch_file() as path:
            await self._download(handle, path)
            if variant is Variant.VIDEO:
                with contextlib.suppress(ProviderError):
                    await self._previews.make(key, path)  # the previews come next
                yield FileStream(path, Variant.VIDEO.default_content_type)
            else:
                made = await self._previews.make(key, path)
                yield BytesStream(made[variant], variant)

    async def _download(self, handle: _Handle, path: Path) -> None:
        operation = await self._operation(handle)
        response = operation.response or operation.result
        videos = response.generated_videos if response is not None else None
        video = videos[0].video if videos else None
        if video is None or not video.uri:
            raise ProviderRejected("Veo has no finished video for this job", code="video_not_ready")
        with _translated():
            await self._client.aio.files.download(file=video, config=None, destination=str(path))


def _image(reference: ImageBytes | ImageUrl | None) -> types.Image | None:
    if reference is None:
        return None
    if isinstance(reference, ImageUrl):
        raise ProviderRejected(
            "Veo takes the first frame as bytes, not a URL",
            code="invalid_value",
            param="input_reference",
        )
    return types.Image(image_bytes=reference.data, mime_type=reference.content_type or None)


def _operation_error(error: Mapping[str, Any]) -> tuple[str, str]:
    message = str(error.get("message") or "Veo could not make this video")
    status = error.get("status")
    code = error.get("code")
    name = status if isinstance(status, str) else f"veo_error_{code}" if code else "veo_error"
    return name.lower(), message


def _filtered(response: types.GenerateVideosResponse) -> tuple[str, str]:
    reasons = [str(r) for r in response.rai_media_filtered_reasons or () if r]
    if response.rai_media_filtered_count or reasons:
        detail = "; ".join(reasons) or "no reason given"
        return "content_filtered", f"Veo's safety filters removed the video: {detail}"
    return "no_video", "Veo finished without a video"


@contextmanager
def _translated() -> Any:
    """Every SDK and transport failure inside the block as a `ProviderError`."""
    try:
        yield
    except ProviderError:
        raise
    except genai_errors.APIError as exc:
        raise _from_api_error(exc) from exc
    except (httpx.TransportError, httpx2.TransportError) as exc:
        raise from_transport(exc) from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ProviderProtocolError(
            f"Veo answered in a shape the SDK could not read: {exc}"
        ) from exc


def _from_api_error(exc: genai_errors.APIError) -> ProviderError:
    status = exc.code if isinstance(exc.code, int) else 500
    if status == 400 and "API key not valid" in (exc.message or ""):
        # Google refuses a bad key with 400 INVALID_ARGUMENT, not 401: no retry cures it.
        return ProviderAuthError(exc.message or "API key not valid", status=status)
    return error_for_status(
        status,
        exc.message or str(exc),
        code=exc.status if isinstance(exc.status, str) else None,
        retry_after=_retry_delay(exc.details),
        request_id=None,
    )


def _retry_delay(details: Any) -> float | None:
    """`google.rpc.RetryInfo`'s `retryDelay` ("30s") from an error body, if it has one."""
    error = details.get("error") if isinstance(details, Mapping) else None
    items = error.get("details") if isinstance(error, Mapping) else None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _unsupported(action: str) -> ProviderRejected:
    return ProviderRejected(f"Veo cannot {action} a video here", code="unsupported")
