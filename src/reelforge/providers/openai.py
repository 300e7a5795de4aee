"""OpenAIProvider: any OpenAI-compatible `/v1/videos` endpoint, through the official SDK.

The same adapter serves the real endpoint, third-party gateways speaking the protocol, and
the built-in emulator mounted in-process (pass an `http_client` with an ASGI transport).

Three SDK facts shape this module (see shared/reference/openai-videos-api.md):

- Every `client.videos.*` method is decorated `@deprecated` and warns on each call. We silence
  exactly that warning, only around the synchronous call that builds the request (never
  around an `await`: `warnings.catch_warnings` swaps process-global state, and two tasks
  interleaving inside it would restore each other's filters out of order).
- `videos.edit`/`videos.extend` with `video={"id": …}` and `videos.create` with an
  `input_reference={"image_url": …}` raise client-side (§4.1, §4.7, §4.8); those go out as
  JSON through `client.post(…, cast_to=Video)`.
- SDK retries are off (see `OpenAIProvider.__init__`), and every SDK error becomes a
  `ProviderError` before it leaves this module.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, cast

import httpx2
import openai
from openai import AsyncAPIResponse, AsyncOpenAI
from openai.types import Video, VideoDeleteResponse
from openai.types.video_seconds import VideoSeconds
from openai.types.video_size import VideoSize

from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.upstream import (
    CreateRequest,
    ImageBytes,
    ImageUrl,
    ProviderProtocolError,
    ProviderRejected,
    ProviderTimeout,
    UpstreamPage,
    UpstreamVideo,
    Variant,
)
from reelforge.providers.base import ContentStream, ListOrder
from reelforge.providers.openai_errors import translated_errors
from reelforge.providers.openai_reading import optional_str, page_items, upstream_video

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Reads are cheap JSON; a create with a first-frame image uploads a few MB at most. Downloads
# apply the read timeout per chunk, so a long video is fine as long as bytes keep coming.
DEFAULT_TIMEOUT = httpx2.Timeout(60.0, connect=5.0)

_SORA_SHUTDOWN = r"The Sora API is scheduled to permanently shut down"


@contextmanager
def _sora_deprecation_silenced() -> Iterator[None]:
    """Hide the SDK's shutdown notice for one synchronous call; every other warning stays."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SORA_SHUTDOWN, category=DeprecationWarning)
        yield


class OpenAIProvider:
    """A `Provider` for an OpenAI-compatible Videos endpoint."""

    def __init__(
        self,
        *,
        spec: ProviderSpec,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        """Build the SDK client; the provider owns it (and `http_client`) from here on.

        `max_retries` applies to reads (retrieve, list, delete, download) only, and defaults
        to 0: the job engine owns retries and backoff, so its per-provider rate limiter must
        see every upstream request, a 429's `Retry-After` must reach its scheduler instead of
        being slept away inside one call (up to 120 s, holding a lease), and attempt budgets
        stay in one place. Calls that start a job (create, remix, edit, extend) never retry
        in the SDK whatever this says: a retried create after a timeout or 5xx can start a
        second, paid job upstream (the SDK sends no idempotency key).
        """
        self._spec = spec
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
        # Shares the connection pool; only the retry policy differs.
        self._once = self._client.with_options(max_retries=0)

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def spec(self) -> ProviderSpec:
        return self._spec

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    # Calls that start a job: never retried here.

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        reference = request.input_reference
        if isinstance(reference, ImageUrl):
            # The SDK cannot send the object form (§4.1): post the JSON body ourselves.
            body = {
                "prompt": request.prompt,
                "model": request.model,
                "size": request.size,
                "seconds": request.seconds,
                "input_reference": {"image_url": reference.url},
            }
            return await self._post_video("/videos", body)
        upload: Any = openai.omit
        if isinstance(reference, ImageBytes):
            upload = (reference.filename, reference.data, reference.content_type)
        with _sora_deprecation_silenced():
            # The SDK's Literal types lag the protocol (16/20 s, 1080p): the catalog decides.
            manager = self._once.videos.with_streaming_response.create(
                prompt=request.prompt,
                model=request.model,
                size=cast(VideoSize, request.size),
                seconds=cast(VideoSeconds, request.seconds),
                input_reference=upload,
            )
        return await self._video_from(manager)

    async def remix(self, video_id: str, prompt: str) -> UpstreamVideo:
        _check_id(video_id)
        with _sora_deprecation_silenced():
            manager = self._once.videos.with_streaming_response.remix(video_id, prompt=prompt)
        return await self._video_from(manager)

    async def edit(self, video_id: str, prompt: str) -> UpstreamVideo:
        _check_id(video_id)
        # `videos.edit(video={"id": …})` raises client-side (§4.7).
        return await self._post_video(
            "/videos/edits", {"video": {"id": video_id}, "prompt": prompt}
        )

    async def extend(self, video_id: str, prompt: str, seconds: str) -> UpstreamVideo:
        _check_id(video_id)
        # `videos.extend(video={"id": …})` raises client-side (§4.8).
        body = {"video": {"id": video_id}, "prompt": prompt, "seconds": seconds}
        return await self._post_video("/videos/extensions", body)

    # Reads.

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        _check_id(video_id)
        # The streaming wrapper (unlike `with_raw_response`, whose wrapper is a coroutine)
        # calls the deprecated method synchronously, and still gives us the headers, where
        # `openai-poll-after-ms` lives.
        with _sora_deprecation_silenced():
            manager = self._client.videos.with_streaming_response.retrieve(video_id)
        return await self._video_from(manager)

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: ListOrder = "desc"
    ) -> UpstreamPage:
        with _sora_deprecation_silenced():
            pending = self._client.videos.list(
                after=openai.omit if after is None else after,
                limit=openai.omit if limit is None else limit,
                order=order,
            )
        with translated_errors():
            page = await pending
        items = tuple(upstream_video(item) for item in page_items(page))
        return UpstreamPage(
            items=items,
            # `first_id` is in the envelope but not in the SDK's page model (kept as an extra).
            first_id=optional_str(page, "first_id") or (items[0].id if items else None),
            last_id=optional_str(page, "last_id") or (items[-1].id if items else None),
            has_more=getattr(page, "has_more", None) is True,
        )

    async def delete(self, video_id: str) -> None:
        _check_id(video_id)
        with _sora_deprecation_silenced():
            pending = self._client.videos.delete(video_id)
        with translated_errors():
            answer = await pending
        if (
            not isinstance(answer, VideoDeleteResponse)
            or getattr(answer, "deleted", None) is not True
        ):
            raise ProviderProtocolError(f"delete of {video_id} was not confirmed: {answer!r}")

    def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AbstractAsyncContextManager[ContentStream]:
        _check_id(video_id)
        return self._open_content(video_id, variant)

    async def check(self) -> None:
        await self.list(limit=1)

    async def aclose(self) -> None:
        await self._client.close()

    # Plumbing.

    @asynccontextmanager
    async def _open_content(self, video_id: str, variant: Variant) -> AsyncIterator[ContentStream]:
        with _sora_deprecation_silenced():
            manager = self._client.videos.with_streaming_response.download_content(
                video_id, variant=variant.value
            )
        async with AsyncExitStack() as stack:
            with translated_errors():
                response = await stack.enter_async_context(manager)
            yield _SdkContentStream(response, variant)

    async def _video_from(
        self, manager: AbstractAsyncContextManager[AsyncAPIResponse[Video]]
    ) -> UpstreamVideo:
        with translated_errors():
            async with manager as response:
                return upstream_video(await response.parse(), response.headers)

    async def _post_video(self, path: str, body: Mapping[str, object]) -> UpstreamVideo:
        with translated_errors():
            parsed = await self._once.post(path, body=body, cast_to=Video)
        return upstream_video(parsed)


class _SdkContentStream:
    """A `ContentStream` over one open SDK response."""

    def __init__(self, response: AsyncAPIResponse[bytes], variant: Variant) -> None:
        self._response = response
        self._variant = variant

    @property
    def content_type(self) -> str:
        value = self._response.headers.get("content-type", "").split(";")[0].strip()
        return value or self._variant.default_content_type

    @property
    def content_length(self) -> int | None:
        value = self._response.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        received = 0
        with translated_errors():
            async for chunk in self._response.iter_bytes(chunk_size):
                received += len(chunk)
                yield chunk
        # A body cut short is a broken connection, even where the transport (an in-process
        # ASGI app, some proxies) does not notice: never hand a partial file on as complete.
        expected = self.content_length
        encoded = self._response.headers.get("content-encoding", "identity") != "identity"
        if expected is not None and not encoded and received != expected:
            raise ProviderTimeout(f"download ended after {received} of {expected} bytes")


def _check_id(video_id: str) -> None:
    # The SDK raises a bare ValueError for an empty id; keep callers on ProviderError.
    if not video_id:
        raise ProviderRejected("a video id is required", code="invalid_value", param="video_id")
