"""The provider interface: what the job engine may ask of any upstream video generator.

Every method either returns domain types (`reelforge.domain.upstream`) or raises a
`ProviderError` subclass; no SDK type or exception crosses this line. Providers hold no
state of their own beyond a connection pool and never touch the database: the engine owns
retries, backoff, rate limits and bookkeeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol, runtime_checkable

from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.upstream import CreateRequest, UpstreamPage, UpstreamVideo, Variant

ListOrder = Literal["asc", "desc"]


@runtime_checkable
class ContentStream(Protocol):
    """One downloadable asset, read chunk by chunk so memory stays flat whatever its size."""

    @property
    def content_type(self) -> str:
        """Upstream's media type, or the variant's protocol default when it sent none."""
        ...

    @property
    def content_length(self) -> int | None:
        """Size in bytes if upstream announced it; `aiter_bytes` raises if a different amount
        arrives, so a body that ends early is never mistaken for a whole file."""
        ...

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body's chunks; may raise `ProviderError` midway (the connection broke)."""
        ...


@runtime_checkable
class Provider(Protocol):
    """An upstream video generator speaking (or adapted to) the Videos protocol.

    Calls that create a job (`create`, `remix`, `edit`, `extend`) are not idempotent: a
    provider never retries them itself, and a `ProviderError` with `outcome_unknown` means
    the job may exist upstream anyway.
    """

    @property
    def name(self) -> str:
        """The catalog name recorded on every video this provider makes."""
        ...

    @property
    def spec(self) -> ProviderSpec:
        """What this provider can make (models, sizes, durations, features, prices)."""
        ...

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        """Start a job from a prompt (and optionally a first-frame image)."""
        ...

    async def remix(self, video_id: str, prompt: str) -> UpstreamVideo:
        """Start a new job that reworks a completed video with a new prompt."""
        ...

    async def edit(self, video_id: str, prompt: str) -> UpstreamVideo:
        """Start a new job that edits a completed video as the prompt says."""
        ...

    async def extend(self, video_id: str, prompt: str, seconds: str) -> UpstreamVideo:
        """Start a new job that continues a completed video by `seconds` more."""
        ...

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        """The job's current state: the truth the engine reconciles against."""
        ...

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: ListOrder = "desc"
    ) -> UpstreamPage:
        """One page of the jobs upstream knows, for reconciling an unknown create outcome."""
        ...

    async def delete(self, video_id: str) -> None:
        """Delete a finished job and its outputs upstream."""
        ...

    def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AbstractAsyncContextManager[ContentStream]:
        """Open one output of a completed job; the connection closes when the block exits."""
        ...

    async def check(self) -> None:
        """Raise `ProviderError` unless upstream answers an authenticated, cheap request."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is unusable afterwards."""
        ...
