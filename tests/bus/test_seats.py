"""Seats: a user's connection cap counted across processes in Redis (or in one process without
it); a process that stops renewing (killed) frees its seats after their lifetime."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis

from reelforge.bus.seats import LocalSeats, RedisSeats, Seat

pytestmark = pytest.mark.anyio

CAP = 3


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"reelforge-test-{uuid.uuid4().hex}"


async def _fill(seats: LocalSeats | RedisSeats, user: str, n: int) -> list[Seat]:
    taken = [await seats.take(user, CAP) for _ in range(n)]
    assert all(seat is not None for seat in taken)
    return [seat for seat in taken if seat is not None]


async def test_one_process_holds_at_most_the_cap_per_user() -> None:
    seats = LocalSeats()
    held = await _fill(seats, "ada", CAP)

    assert await seats.take("ada", CAP) is None
    assert await seats.take("bob", CAP) is not None
    await seats.release(held[0])
    await seats.release(held[0])  # twice frees one seat, not two
    assert await seats.take("ada", CAP) is not None
    assert await seats.take("ada", CAP) is None


@pytest.mark.redis
async def test_the_cap_holds_across_processes(redis: Redis, prefix: str) -> None:
    one, other = RedisSeats(redis, prefix), RedisSeats(redis, prefix)
    held = await _fill(one, "ada", CAP - 1)
    await _fill(other, "ada", 1)

    assert await one.take("ada", CAP) is None
    assert await other.take("ada", CAP) is None
    assert await other.take("bob", CAP) is not None
    await one.release(held[0])
    assert await other.take("ada", CAP) is not None
    assert await one.take("ada", CAP) is None


@pytest.mark.redis
async def test_the_last_seat_goes_to_one_of_many_at_once(redis: Redis, prefix: str) -> None:
    processes = [RedisSeats(redis, prefix) for _ in range(10)]
    taken: list[Seat | None] = []

    async def take(seats: RedisSeats) -> None:
        taken.append(await seats.take("ada", CAP))

    async with anyio.create_task_group() as tasks:
        for seats in processes:
            tasks.start_soon(take, seats)

    assert sum(seat is not None for seat in taken) == CAP


@pytest.mark.redis
async def test_a_renewed_seat_stays_and_a_dead_processs_seats_fall_free(
    redis: Redis, prefix: str
) -> None:
    alive, killed = RedisSeats(redis, prefix, seconds=1.0), RedisSeats(redis, prefix, seconds=1.0)
    await _fill(alive, "ada", 1)
    await _fill(killed, "ada", CAP - 1)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(alive.keep)  # `killed` never renews, as a SIGKILLed process
        with anyio.fail_after(30):
            while await alive.take("ada", CAP) is None:
                await anyio.sleep(0.05)
        # The survivor's own seats outlived several lifetimes: only the dead ones fell free.
        await anyio.sleep(3.0)
        assert await alive.take("ada", CAP) is not None
        assert await alive.take("ada", CAP) is None
        tasks.cancel_scope.cancel()


@pytest.mark.redis
async def test_without_redis_a_connection_is_admitted_untracked(prefix: str) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    seats = RedisSeats(unreachable, prefix)
    try:
        seat = await seats.take("ada", 1)
        assert seat is not None
        await seats.release(seat)
    finally:
        await unreachable.aclose()
