"""Each vendor's own rate limit, and the pause a vendor's 429 asks for, per provider.

Two things keep the workers within what a vendor allows:

- a rate limit per provider (`REELFORGE_FAL_RATE_LIMIT`, `…_VEO_…`, `…_OPENAI_…`, else
  `REELFORGE_PROVIDER_RATE_LIMIT`), counted with the `limits` library once per engine step
  that talks to the provider, shared by every worker through Redis when there is one;
- a pause: when a vendor answers 429 with a retry hint, no worker calls that provider again
  until the hint has passed (a Redis key with that time to live; in-process without Redis).

The gate (`UpstreamLimits.admit`) runs before a step changes anything, so a step it holds
back costs the video nothing (no attempt counted); `LimitedProvider` records the 429s and
stops calls made while a pause another worker recorded is running.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.upstream import (
    CreateRequest,
    ProviderError,
    ProviderRateLimited,
    UpstreamPage,
    UpstreamVideo,
    Variant,
)
from reelforge.logs import get_logger
from reelforge.providers.base import ContentStream, ListOrder, Provider
from reelforge.services.ratelimits import RateLimiter, limiter_storage
from reelforge.settings import ProviderName, Settings

log = get_logger("reelforge.upstream_limits")

_T = TypeVar("_T")
Shared = Callable[[Redis], Awaitable[None]]

# A vendor's 429 without a retry hint pauses its provider this long.
DEFAULT_PAUSE_SECONDS = 5.0
# A pause longer than this is taken as a mistake (a date misread as seconds) and cut to it.
MAX_PAUSE_SECONDS = 3600.0
SHARED_TIMEOUT_SECONDS = 1.0


def rate_limit_for(settings: Settings, provider: str) -> str:
    """The `limits` spec for one provider: its own setting, else the shared default."""
    own = {
        ProviderName.FAL.value: settings.fal_rate_limit,
        ProviderName.VEO.value: settings.veo_rate_limit,
        ProviderName.OPENAI.value: settings.openai_rate_limit,
    }.get(provider)
    return own or settings.provider_rate_limit


class Pauses:
    """When each provider may be called again; shared through Redis, kept here as well so a
    Redis outage never forgets a pause this process was told about."""

    def __init__(
        self, redis: Redis | None, prefix: str, *, timeout: float = SHARED_TIMEOUT_SECONDS
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:upstream-pause"
        self._timeout = timeout
        self._local: dict[str, float] = {}
        self._degraded = False

    async def pause(self, provider: str, seconds: float) -> None:
        seconds = min(max(seconds, 0.001), MAX_PAUSE_SECONDS)
        until = time.monotonic() + seconds
        self._local[provider] = max(self._local.get(provider, 0.0), until)
        if self._redis is None:
            return
        milliseconds = max(1, math.ceil(seconds * 1000))
        key = f"{self._prefix}:{provider}"

        async def write(redis: Redis) -> None:
            # NX then GT: a shorter pause never cuts short a longer one already running.
            await redis.set(key, "1", px=milliseconds, nx=True)
            await redis.pexpire(key, milliseconds, gt=True)

        await self._shared(write)

    async def remaining(self, provider: str) -> float:
        """Seconds until `provider` may be called again (0: now)."""
        local = max(0.0, self._local.get(provider, 0.0) - time.monotonic())
        if self._redis is None:
            return local
        shared = 0.0

        async def read(redis: Redis) -> None:
            nonlocal shared
            milliseconds = await redis.pttl(f"{self._prefix}:{provider}")
            shared = max(0.0, milliseconds / 1000) if milliseconds > 0 else 0.0

        await self._shared(read)
        return max(local, shared)

    async def _shared(self, operation: Shared) -> None:
        assert self._redis is not None
        try:
            with anyio.fail_after(self._timeout):
                await operation(self._redis)
        except (RedisError, OSError, TimeoutError) as error:
            if not self._degraded:
                log.warning(
                    "upstream pauses unreachable in Redis; this process keeps its own",
                    error=f"{type(error).__name__}: {error}",
                )
            self._degraded = True
            return
        if self._degraded:
            log.info("upstream pauses are shared through Redis again")
            self._degraded = False


class UpstreamLimits:
    """The gate every engine step passes before it talks to a provider."""

    def __init__(self, limiters: Mapping[str, RateLimiter], pauses: Pauses) -> None:
        self._limiters = dict(limiters)
        self.pauses = pauses

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: Redis | None, providers: list[str]
    ) -> UpstreamLimits:
        storage = limiter_storage(redis, settings.redis_key_prefix)
        limiters = {
            name: RateLimiter(rate_limit_for(settings, name), storage, scope="upstream")
            for name in providers
        }
        return cls(limiters, Pauses(redis, settings.redis_key_prefix))

    async def admit(self, provider: str) -> None:
        """Count one step against `provider`'s limit; ProviderRateLimited (with the seconds to
        wait) while it is paused or over its limit."""
        waiting = await self.pauses.remaining(provider)
        if waiting > 0:
            raise _held_back(provider, "is pausing after its 429", waiting)
        limiter = self._limiters.get(provider)
        if limiter is None:
            return
        decision = await limiter.hit(f"provider:{provider}")
        if not decision.allowed:
            raise _held_back(provider, "is at its rate limit", float(decision.retry_after))

    async def observe(self, provider: str, error: ProviderError) -> None:
        """A vendor's retryable 429 pauses every worker's calls to it for its retry hint."""
        if isinstance(error, ProviderRateLimited) and error.retryable:
            seconds = error.retry_after if error.retry_after else DEFAULT_PAUSE_SECONDS
            log.info("vendor asked to slow down", provider=provider, seconds=seconds)
            await self.pauses.pause(provider, seconds)


def _held_back(provider: str, why: str, seconds: float) -> ProviderRateLimited:
    return ProviderRateLimited(
        f"{provider} {why}; calls resume in {seconds:.1f} s",
        code="upstream_paused",
        retry_after=seconds,
    )


class LimitedProvider:
    """A provider whose calls wait out the pauses of `limits` and report its 429s to it."""

    def __init__(self, inner: Provider, limits: UpstreamLimits) -> None:
        self._inner = inner
        self._limits = limits

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def spec(self) -> ProviderSpec:
        return self._inner.spec

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        return await self._call(lambda: self._inner.create(request))

    async def remix(self, video_id: str, prompt: str) -> UpstreamVideo:
        return await self._call(lambda: self._inner.remix(video_id, prompt))

    async def edit(self, video_id: str, prompt: str) -> UpstreamVideo:
        return await self._call(lambda: self._inner.edit(video_id, prompt))

    async def extend(self, video_id: str, prompt: str, seconds: str) -> UpstreamVideo:
        return await self._call(lambda: self._inner.extend(video_id, prompt, seconds))

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        return await self._call(lambda: self._inner.retrieve(video_id))

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: ListOrder = "desc"
    ) -> UpstreamPage:
        return await self._call(lambda: self._inner.list(after=after, limit=limit, order=order))

    async def delete(self, video_id: str) -> None:
        await self._call(lambda: self._inner.delete(video_id))

    def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AbstractAsyncContextManager[ContentStream]:
        return self._stream(video_id, variant)

    @asynccontextmanager
    async def _stream(self, video_id: str, variant: Variant) -> AsyncIterator[ContentStream]:
        await self._before()
        try:
            async with self._inner.stream_content(video_id, variant) as stream:
                yield stream
        except ProviderError as error:
            await self._limits.observe(self.name, error)
            raise

    async def check(self) -> None:
        await self._inner.check()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        await self._before()
        try:
            return await call()
        except ProviderError as error:
            await self._limits.observe(self.name, error)
            raise

    async def _before(self) -> None:
        waiting = await self._limits.pauses.remaining(self.name)
        if waiting > 0:
            raise _held_back(self.name, "is pausing after its 429", waiting)
