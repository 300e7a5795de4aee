"""The scale-out bus: notices published on one Redis channel, one subscription per process fanned
out to that process's subscribers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from reelforge.bus.local import LocalBus
from reelforge.bus.notices import RESYNC, Notice
from reelforge.logs import get_logger

log = get_logger("reelforge.bus")


class RedisBus:
    """Publishes through Redis; `listen` (run for the process's life) carries what any process
    published to this one's subscribers.

    Pub/sub keeps nothing for a subscriber that is away, so after the subscription was down,
    every subscriber gets a RESYNC, and `connected` is False meanwhile: a cache kept exact by
    notices must not trust itself then.
    """

    def __init__(self, redis: Redis, channel: str, *, local: LocalBus | None = None) -> None:
        self._redis = redis
        self._channel = channel
        self._local = local or LocalBus()
        self._connected = False
        self._backoff = ExponentialBackoff(cap=5.0, base=0.1)

    @property
    def connected(self) -> bool:
        return self._connected

    async def publish(self, notice: Notice) -> None:
        try:
            await self._redis.publish(self._channel, notice.encode())
        except (RedisError, OSError) as error:
            log.warning("a bus notice was not published", topic=notice.topic, error=str(error))

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Notice]]:
        return self._local.subscribe()

    async def listen(self) -> None:
        """Subscribe to the channel and fan its notices out until cancelled, reconnecting with
        backoff when Redis goes away."""
        failures = 0
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._connected = True
                    if failures:
                        self._local.deliver(RESYNC)
                        failures = 0
                    async for message in pubsub.listen():
                        self._take(message)
            except (RedisError, OSError) as error:
                self._connected = False
                failures += 1
                log.warning("bus subscription lost; reconnecting", error=str(error))
                await anyio.sleep(self._backoff.compute(failures))
            finally:
                self._connected = False

    def _take(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            notice = Notice.decode(message["data"])
        except ValueError:
            log.warning("ignored a malformed bus message", channel=self._channel)
            return
        self._local.deliver(notice)

    async def aclose(self) -> None:
        await self._local.aclose()
