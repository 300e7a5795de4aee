"""Rate limits on creating videos, per user and per API key, with the `limits` library."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


def limiter_storage(redis_url: str | None, prefix: str) -> Storage:
    """Shared through Redis when there is one, so every process counts together."""
    if redis_url is None:
        return MemoryStorage()
    return RedisStorage(
        redis_url.replace("redis", "async+redis", 1),
        implementation="redispy",
        key_prefix=f"{prefix}:limits",
    )


class CreateRateLimiter:
    def __init__(self, spec: str, storage: Storage) -> None:
        self._items = limits.parse_many(spec)
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, *identities: str) -> RateDecision:
        """Count one create against every identity; the tightest limit decides."""
        decisions = []
        for identity in identities:
            for item in self._items:
                allowed = await self._limiter.hit(item, "create", identity)
                stats = await self._limiter.get_window_stats(item, "create", identity)
                decision = RateDecision(allowed, item.amount, stats.remaining, stats.reset_time)
                if not allowed:
                    return decision
                decisions.append(decision)
        return min(decisions, key=lambda d: d.remaining)
