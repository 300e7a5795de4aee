"""What travels on the bus: notices that something changed, and the bus's interface."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Topic(StrEnum):
    VIDEO = "video"  # id: the video; owner_id: its owner
    ACCOUNT = "account"  # id: the user (disabled, role or password changed)
    KEY = "key"  # id: the API key; owner_id: its user (revoked)
    SESSION = "session"  # id: the session's token id; owner_id: its user (ended by logout)
    # id: a video whose job is due now (just accepted, or nudged by its provider's webhook):
    # every engine looks for due work at once instead of at its next idle poll.
    WAKE = "wake"
    # The bus may have lost notices (a subscriber fell behind, Redis came back): whatever a
    # subscriber derived from notices must be dropped and the database read again.
    RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class Notice:
    """`id` of `topic` changed; `changed` names what, for subscribers that care."""

    topic: Topic
    id: str
    owner_id: str | None = None
    changed: frozenset[str] = frozenset()

    def encode(self) -> bytes:
        return json.dumps(
            [self.topic.value, self.id, self.owner_id, sorted(self.changed)],
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> Notice:
        """The notice `encode` made; ValueError for anything else."""
        try:
            topic, id_, owner_id, changed = json.loads(data)
            return cls(Topic(topic), str(id_), owner_id, frozenset(map(str, changed)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a bus notice: {data!r:.200}") from error


RESYNC = Notice(Topic.RESYNC, "")

# Called in the bus's own task with each notice as it arrives, before any subscriber's queue:
# what an observer drops is dropped before `caught_up` can say the notice was taken.
Observer = Callable[[Notice], None]


class Bus(Protocol):
    """At-most-once delivery of notices to every subscriber, in this process or (Redis) any."""

    @property
    def connected(self) -> bool:
        """False while notices from other processes may be going missing."""
        ...

    async def publish(self, notice: Notice) -> None:
        """Send `notice`; never raises (a lost notice costs subscribers only time)."""
        ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Notice]]:
        """Every notice published from now on, until the context exits."""
        ...

    def observe(self, observer: Observer) -> None:
        """Call `observer` with every notice (RESYNC included) as this process takes it."""
        ...

    async def caught_up(self) -> bool:
        """True when every notice any process published before this call has reached this
        process's observers; False when that can't be known (then trust nothing derived)."""
        ...

    async def listen(self) -> None:
        """Carry other processes' notices to this one's subscribers until cancelled (run once
        per process that subscribes; the in-process bus has nothing to carry)."""
        ...

    async def aclose(self) -> None: ...
