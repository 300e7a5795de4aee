"""Create rate limits: the tightest limit decides, and Redis shares the count between processes."""

from __future__ import annotations

import uuid

import pytest
from limits.aio.storage import MemoryStorage
from redis.asyncio import Redis

from reelforge.services.ratelimits import RateLimiter, limiter_storage

pytestmark = pytest.mark.anyio


async def test_the_limit_admits_exactly_its_amount() -> None:
    limiter = RateLimiter("3/minute", MemoryStorage(), "create")

    decisions = [await limiter.hit("user:a") for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 0 < decisions[-1].retry_after <= 60


async def test_users_and_keys_are_counted_apart_and_together() -> None:
    limiter = RateLimiter("2/minute", MemoryStorage(), "create")

    assert (await limiter.hit("user:a", "key:1")).allowed
    assert (await limiter.hit("user:a", "key:2")).allowed
    assert not (await limiter.hit("user:a", "key:3")).allowed
    assert (await limiter.hit("user:b", "key:4")).allowed


async def test_scopes_count_apart() -> None:
    storage = MemoryStorage()
    creates = RateLimiter("1/minute", storage, "create")
    upstream = RateLimiter("1/minute", storage, "upstream")

    assert (await creates.hit("user:a")).allowed
    assert (await upstream.hit("user:a")).allowed
    assert not (await creates.hit("user:a")).allowed


async def test_the_tightest_of_several_limits_decides() -> None:
    limiter = RateLimiter("5/minute;2/second", MemoryStorage(), "create")

    decisions = [await limiter.hit("user:a") for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[-1].limit == 2


@pytest.mark.redis
async def test_redis_shares_the_count_between_processes(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    async with Redis.from_url(redis_url) as one, Redis.from_url(redis_url) as other:
        first = RateLimiter("3/minute", limiter_storage(one, prefix), "create")
        second = RateLimiter("3/minute", limiter_storage(other, prefix), "create")

        results = [
            (await first.hit("user:a")).allowed,
            (await second.hit("user:a")).allowed,
            (await first.hit("user:a")).allowed,
            (await second.hit("user:a")).allowed,
        ]

        assert results == [True, True, True, False]
        await one.delete(*[key async for key in one.scan_iter(f"{prefix}:*")])
