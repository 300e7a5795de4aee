"""Rate limits with the `limits` library: creates per user and key, upstream calls per provider."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis


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
        # limits types its **options as scalars, but its redis-py backend takes a pool.
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


class RateLimiter:
    """One `limits` spec (e.g. `30/minute;500/day`) counted under `scope` for each identity."""

    def __init__(self, spec: str, storage: Storage, scope: str) -> None:
        self._items = limits.parse_many(spec)
        self._limiter = MovingWindowRateLimiter(storage)
        self._scope = scope

    async def hit(self, *identities: str) -> RateDecision:
        """Count one event against every identity; the tightest limit decides."""
        decisions = []
        for identity in identities:
            for item in self._items:
                allowed = await self._limiter.hit(item, self._scope, identity)
                stats = await self._limiter.get_window_stats(item, self._scope, identity)
                decision = RateDecision(allowed, item.amount, stats.remaining, stats.reset_time)
                if not allowed:
                    return decision
                decisions.append(decision)
        return min(decisions, key=lambda d: d.remaining)
