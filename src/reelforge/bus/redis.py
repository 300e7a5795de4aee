"""The scale-out bus: numbered notices published on one Redis channel, one subscription per
process fanned out to that process's subscribers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from reelforge.bus.local import LocalBus
from reelforge.bus.notices import RESYNC, Notice, Observer
from reelforge.logs import get_logger

log = get_logger("reelforge.bus")

# Numbers each notice as it is published, in one step: a process that reads the counter and
# finds the number of the last notice it took knows that nothing published before is missing.
_PUBLISH = """
local number = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], number .. ':' .. ARGV[2])
return number
"""


class RedisBus:
    """Publishes through Redis; `listen` (run for the process's life) carries what any process
    published to this one's subscribers.

    Pub/sub keeps nothing for a subscriber that is away, so after the subscription was down,
    every subscriber gets a RESYNC, and `connected` is False meanwhile: a cache kept exact by
    notices must not trust itself then.

    Every notice is numbered by a counter in Redis as it is published (`_PUBLISH`). `caught_up`
    compares that counter with the number of the last notice this process took: equal, and every
    change published before the call has reached this process's observers.
    """

    def __init__(self, redis: Redis, channel: str, *, local: LocalBus | None = None) -> None:
        self._redis = redis
        self._channel = channel
        self._counter = f"{channel}:sequence"
        self._local = local or LocalBus()
        self._connected = False
        self._backoff = ExponentialBackoff(cap=5.0, base=0.1)
        self._script = redis.register_script(_PUBLISH)
        self._taken: int | None = None
        self._observers: list[Observer] = []

    @property
    def connected(self) -> bool:
        return self._connected

    async def publish(self, notice: Notice) -> None:
        try:
            await self._script(keys=[self._counter], args=[self._channel, notice.encode()])
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
                    # Subscribed first, counted second: whatever was published before the
                    # count is forgotten by the observers now, whatever after will arrive.
                    self._taken = int(await self._redis.get(self._counter) or 0)
                    self._observe(RESYNC)
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
                self._taken = None

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    async def caught_up(self) -> bool:
        """Whether every notice published before this call has been given to the observers;
        False (never an error) while Redis can't say."""
        if not self._connected or self._taken is None:
            return False
        try:
            counted = await self._redis.get(self._counter)
        except (RedisError, OSError):
            return False
        # Equal, not "at most": a Redis that restarted empty counts from 0 again, and until
        # this process's subscription notices, a smaller count would hide notices it missed.
        return self._connected and self._taken is not None and int(counted or 0) == self._taken

    def _take(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            number, _, data = bytes(message["data"]).partition(b":")
            notice, sequence = Notice.decode(data), int(number)
        except ValueError:
            log.warning("ignored a malformed bus message", channel=self._channel)
            return
        taken = self._taken if self._taken is not None else sequence - 1
        if sequence > taken + 1:
            # A number went missing (the counter was reset, or a message lost): start again.
            self._observe(RESYNC)
            self._local.deliver(RESYNC)
        self._taken = max(taken, sequence)
        self._observe(notice)
        self._local.deliver(notice)

    def _observe(self, notice: Notice) -> None:
        for observer in self._observers:
            observer(notice)

    async def aclose(self) -> None:
        await self._local.aclose()
