"""Seats: the live-update connections each user holds, counted across every process.

With Redis, each user's seats are one sorted set (member: a seat of one process's, score: when
it expires by Redis' clock); a process renews its seats every third of `SEAT_SECONDS`, so the
seats of a process that was killed fall free at most `SEAT_SECONDS` later. Without Redis there
is one process, and a dict counts.
"""

from __future__ import annotations

import uuid
from itertools import count
from typing import Protocol

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from reelforge.logs import get_logger

log = get_logger("reelforge.seats")

# How long a seat outlives the process holding it (a crash, a SIGKILL).
SEAT_SECONDS = 30.0

# KEYS[1]: the user's set. ARGV: cap, seat, lifetime in ms. Drops expired seats, then takes one
# if fewer than cap are held; 1 if taken. One script, so two processes can't both take the last.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1]: the user's set. ARGV: lifetime in ms, then this process's seats in it. Moves their
# expiry on (XX: a seat released meanwhile stays released).
_RENEW = """
local t = redis.call('TIME')
local expiry = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


class Seat:
    """One connection's place in its user's count."""

    __slots__ = ("id", "user_id")

    def __init__(self, user_id: str, seat_id: str) -> None:
        self.user_id = user_id
        self.id = seat_id


class Seats(Protocol):
    async def take(self, user_id: str, cap: int) -> Seat | None:
        """A seat for one more connection of `user_id`'s; None if `cap` are held already."""
        ...

    async def release(self, seat: Seat) -> None:
        """Free `seat` (again is harmless)."""
        ...

    async def keep(self) -> None:
        """Keep this process's seats alive until cancelled."""
        ...


class LocalSeats:
    """Seats in one process (no Redis: there is only one)."""

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}
        self._ids = count()

    async def take(self, user_id: str, cap: int) -> Seat | None:
        held = self._held.setdefault(user_id, set())
        if len(held) >= cap:
            return None
        seat = Seat(user_id, str(next(self._ids)))
        held.add(seat.id)
        return seat

    async def release(self, seat: Seat) -> None:
        held = self._held.get(seat.user_id, set())
        held.discard(seat.id)
        if not held:
            self._held.pop(seat.user_id, None)

    async def keep(self) -> None:
        await anyio.sleep_forever()


class RedisSeats:
    """Seats of every process in Redis. Redis out of reach admits the connection untracked:
    the cap guards against abuse, and live updates must not stop with Redis."""

    def __init__(self, redis: Redis, prefix: str, *, seconds: float = SEAT_SECONDS) -> None:
        self._redis = redis
        self._prefix = prefix
        self._lifetime_ms = int(seconds * 1000)
        self._process = uuid.uuid4().hex[:12]
        self._ids = count()
        self._held: dict[str, set[str]] = {}  # user id -> this process's seats
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)

    def _key(self, user_id: str) -> str:
        return f"{self._prefix}:seats:{user_id}"

    async def take(self, user_id: str, cap: int) -> Seat | None:
        seat = Seat(user_id, f"{self._process}:{next(self._ids)}")
        try:
            taken = await self._take(
                keys=[self._key(user_id)], args=[cap, seat.id, self._lifetime_ms]
            )
        except (RedisError, OSError) as error:
            log.warning("connection cap not checked: Redis unreachable", error=str(error))
            return seat
        if not taken:
            return None
        self._held.setdefault(user_id, set()).add(seat.id)
        return seat

    async def release(self, seat: Seat) -> None:
        held = self._held.get(seat.user_id)
        if held is None or seat.id not in held:
            return
        held.discard(seat.id)
        if not held:
            del self._held[seat.user_id]
        try:
            await self._redis.zrem(self._key(seat.user_id), seat.id)
        except (RedisError, OSError) as error:
            log.warning("a seat was left to expire: Redis unreachable", error=str(error))

    async def keep(self) -> None:
        while True:
            await anyio.sleep(self._lifetime_ms / 3000)
            await self.renew()

    async def renew(self) -> None:
        """Move every seat of this process's on by a lifetime."""
        for user_id, seats in list(self._held.items()):
            try:
                await self._renew(keys=[self._key(user_id)], args=[self._lifetime_ms, *seats])
            except (RedisError, OSError) as error:
                log.warning("seats not renewed: Redis unreachable", error=str(error))
                return


def seats_for(redis: Redis | None, prefix: str) -> Seats:
    """Seats across processes through Redis when there is one, else in this process."""
    return RedisSeats(redis, prefix) if redis is not None else LocalSeats()
