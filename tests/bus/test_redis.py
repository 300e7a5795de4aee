"""The Redis bus: a notice published by one process reaches subscribers of another; a gap in
the subscription is reported as a RESYNC."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from reelforge.bus import Notice, RedisBus, Topic
from tests.support.redis_server import redis_server

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

CHANGED = Notice(Topic.VIDEO, "video_1", "user_1", frozenset({"progress"}))


async def _until_connected(bus: RedisBus) -> None:
    with anyio.fail_after(10):
        while not bus.connected:
            await anyio.sleep(0.01)


@pytest.fixture
def channel() -> str:
    return f"reelforge-test-{uuid.uuid4().hex}:bus"


async def test_a_notice_crosses_from_one_bus_to_another(redis_url: str, channel: str) -> None:
    publisher_redis, subscriber_redis = Redis.from_url(redis_url), Redis.from_url(redis_url)
    publisher, subscriber = RedisBus(publisher_redis, channel), RedisBus(subscriber_redis, channel)
    try:
        async with anyio.create_task_group() as tasks, subscriber.subscribe() as notices:
            tasks.start_soon(subscriber.listen)
            await _until_connected(subscriber)
            await publisher.publish(CHANGED)
            with anyio.fail_after(5):
                assert await anext(aiter(notices)) == CHANGED
            tasks.cancel_scope.cancel()
    finally:
        await publisher_redis.aclose()
        await subscriber_redis.aclose()


async def test_malformed_messages_on_the_channel_are_skipped(redis_url: str, channel: str) -> None:
    redis = Redis.from_url(redis_url)
    bus = RedisBus(redis, channel)
    try:
        async with anyio.create_task_group() as tasks, bus.subscribe() as notices:
            tasks.start_soon(bus.listen)
            await _until_connected(bus)
            await redis.publish(channel, b"not json")
            await bus.publish(CHANGED)
            with anyio.fail_after(5):
                assert await anext(aiter(notices)) == CHANGED
            tasks.cancel_scope.cancel()
    finally:
        await redis.aclose()


async def test_a_lost_subscription_is_reported_and_recovered(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        redis = Redis.from_url(server.url)
        bus = RedisBus(redis, "reelforge-test:bus")
        try:
            async with anyio.create_task_group() as tasks, bus.subscribe() as notices:
                tasks.start_soon(bus.listen)
                await _until_connected(bus)
                server.kill()
                # Publishing while Redis is gone loses the notice without raising.
                await bus.publish(CHANGED)
                with anyio.fail_after(10):
                    while bus.connected:
                        await anyio.sleep(0.01)
                server.start()
                await _until_connected(bus)
                with anyio.fail_after(5):
                    assert (await anext(aiter(notices))).topic is Topic.RESYNC
                await bus.publish(CHANGED)
                with anyio.fail_after(5):
                    assert await anext(aiter(notices)) == CHANGED
                tasks.cancel_scope.cancel()
        finally:
            await redis.aclose()
