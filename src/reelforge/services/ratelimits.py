"""Rate limits with the `limits` library: creates per user and key, upstream calls per provider.

When the shared (Redis) count is unreachable, each process counts on its own until it is back:
a limit that still holds per process, rather than refusing every create (the API) or pausing
every job until upstream's outputs expire (the engine). Upstream enforces its own limit anyway,
and the engine already backs off on its 429s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import limits
import limits.errors
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from reelforge.logs import get_logger

log = get_logger("reelforge.ratelimits")

# A hit is one round trip to Redis (well under a millisecond on a LAN); a Redis that accepts
# connections but never answers (a stopped process, a partition) must not hold a request or a
# job's step forever.
SHARED_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


def limiter_storage(redis: Redis | None, prefix: str) -> Storage:
    """Shared through Redis when there is one, so every process counts together.

    The limiter borrows the runtime's connection pool, so closing the runtime closes it.
    """
    if redis is None:
        return MemoryStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=f"{prefix}:limits",
        # Redis failures arrive as limits.errors.StorageError, which RateLimiter falls back on.
        wrap_exceptions=True,
        # limits types its **options as scalars, but its redis-py backend takes a pool.
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


class RateLimiter:
    """One `limits` spec (e.g. `30/minute;500/day`) counted under `scope` for each identity.

    A shared storage that fails or stalls is replaced, for that hit, by a count kept in this
    process (see the module docstring); it is tried again on every hit, so sharing resumes as
    soon as it answers.
    """

    def __init__(
        self,
        spec: str,
        storage: Storage,
        scope: str,
        *,
        shared_timeout: float = SHARED_TIMEOUT_SECONDS,
    ) -> None:
        self._items = limits.parse_many(spec)
        self._limiter = MovingWindowRateLimiter(storage)
        self._local = (
            None if isinstance(storage, MemoryStorage) else MovingWindowRateLimiter(MemoryStorage())
        )
        self._scope = scope
        self._timeout = shared_timeout
        self.degraded = False

    async def hit(self, *identities: str) -> RateDecision:
        """Count one event against every identity; the tightest limit decides."""
        if self._local is None:
            return await self._hit(self._limiter, identities)
        try:
            with anyio.fail_after(self._timeout):
                decision = await self._hit(self._limiter, identities)
        except (limits.errors.StorageError, TimeoutError) as error:
            if not self.degraded:
                # Once per outage: every hit while it lasts would flood the log.
                log.warning(
                    "rate limit storage unreachable; counting in this process until it is back",
                    scope=self._scope,
                    error=_describe(error, self._timeout),
                )
            self.degraded = True
            return await self._hit(self._local, identities)
        if self.degraded:
            log.info("rate limit storage is back; counting is shared again", scope=self._scope)
            self.degraded = False
        return decision

    async def _hit(
        self, limiter: MovingWindowRateLimiter, identities: Sequence[str]
    ) -> RateDecision:
        decisions = []
        for identity in identities:
            for item in self._items:
                allowed = await limiter.hit(item, self._scope, identity)
                stats = await limiter.get_window_stats(item, self._scope, identity)
                decision = RateDecision(allowed, item.amount, stats.remaining, stats.reset_time)
                if not allowed:
                    return decision
                decisions.append(decision)
        return min(decisions, key=lambda d: d.remaining)


def _describe(error: Exception, timeout: float) -> str:
    if isinstance(error, limits.errors.StorageError):
        return f"{type(error.storage_error).__name__}: {error.storage_error}"
    return f"no answer within {timeout} s"
