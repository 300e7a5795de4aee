"""The in-process bus: notices fanned out to this process's subscribers, each a bounded queue."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from reelforge.bus.notices import RESYNC, Notice, Observer

DEFAULT_BACKLOG = 1000


class Subscription:
    """One subscriber's queue. A subscriber that falls `backlog` notices behind loses them all
    and gets one RESYNC instead: a queue that grew without bound would cost memory, and a
    subscriber that slow re-reads the database sooner than it would catch up."""

    __slots__ = ("_backlog", "_overflowed", "_queue", "_ready")

    def __init__(self, backlog: int) -> None:
        self._backlog = backlog
        self._queue: deque[Notice] = deque()
        self._overflowed = False
        self._ready = anyio.Event()

    def offer(self, notice: Notice) -> None:
        if len(self._queue) >= self._backlog:
            self._queue.clear()
            self._overflowed = True
        else:
            self._queue.append(notice)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notice:
        while True:
            if self._overflowed:
                self._overflowed = False
                return RESYNC
            if self._queue:
                return self._queue.popleft()
            self._ready = anyio.Event()
            await self._ready.wait()


class LocalBus:
    """The embedded mode's bus, and each process's fan-out behind the Redis bus."""

    def __init__(self, *, backlog: int = DEFAULT_BACKLOG) -> None:
        self._backlog = backlog
        self._subscriptions: set[Subscription] = set()
        self._observers: list[Observer] = []

    @property
    def connected(self) -> bool:
        return True

    async def publish(self, notice: Notice) -> None:
        for observer in self._observers:
            observer(notice)
        self.deliver(notice)

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    async def caught_up(self) -> bool:
        # Alone, this bus sees only this process's notices: it can't vouch for other processes'
        # commits (the read cache asks the database instead, or keeps nothing).
        return False

    def deliver(self, notice: Notice) -> None:
        """Hand `notice` to every subscriber of this process now."""
        for subscription in self._subscriptions:
            subscription.offer(notice)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Notice]]:
        subscription = Subscription(self._backlog)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def listen(self) -> None:
        return None

    async def aclose(self) -> None:
        self._subscriptions.clear()
