"""Credentials and video views held in memory, kept exact by the bus or by SQLite's data version.

Every read of the cache first asks whether this process's memory has seen every change committed
before the question (`current`). Two sources can answer:

- SQLite on a file: `PRAGMA data_version`, which changes whenever any connection of any process
  commits (db/engine.py). A change of it drops everything held.
- Redis: the bus numbers every notice as it is published; this process is current when the
  counter equals the number of the last notice it took (`Bus.caught_up`), each notice having
  already dropped what it names.

Either way, concurrent readers share one look, begun after each of them asked: it sees every
commit made before any of them asked.

With neither (PostgreSQL alone) nothing is kept. When the answer is unknown (Redis down, the
subscription lost, the look timed out) the caller reads the database and keeps nothing: memory
never answers for a grant the database may have taken back. Nothing expires by time.

What a read keeps is kept only if no notice arrived since it asked (`generation`): a read that
raced a change can't put the old row back after the change dropped it.

Within `one_look()` (an HTTP request: api/edge.py) the answer of the first look serves every
read after it: the request then answers as of that moment, which came after it arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from reelforge.bus.notices import Notice, Topic
from reelforge.domain.accounts import Account
from reelforge.domain.videos import VideoView

Check = Callable[[], Awaitable[bool]]
Probe = Callable[[], int | None]
Value = TypeVar("Value")

# Past this many entries a table starts over; a bound on memory, never on correctness.
MAX_ENTRIES = 50_000
# A look at the counter that takes longer than this counts as "unknown": read the database.
CHECK_TIMEOUT_SECONDS = 0.5


class _Looks:
    """The answers of the looks taken in one request, by cache, while the request runs."""

    __slots__ = ("answers", "open")

    def __init__(self) -> None:
        self.answers: dict[int, bool] = {}
        self.open = True


_LOOKS: ContextVar[_Looks | None] = ContextVar("reelforge_read_cache_looks", default=None)


@contextmanager
def one_look() -> Iterator[None]:
    """Every read of a cache in the block goes by that cache's first look (one per request).

    Closed when the block ends: a task the request started, which holds a copy of its
    context, looks for itself again from then on."""
    looks = _Looks()
    token = _LOOKS.set(looks)
    try:
        yield
    finally:
        looks.open = False
        _LOOKS.reset(token)


@dataclass
class KeyEntry:
    """What authenticating an API key needs of its row (the owner is held apart, by id)."""

    key_id: str
    user_id: str
    key_hash: str
    revoked: bool
    last_used_at: datetime | None


class ReadCache:
    """Memory for the hot reads of every request: accounts, API keys, live sessions, videos."""

    def __init__(self, *, caught_up: Check | None = None, probe: Probe | None = None) -> None:
        if probe is not None:
            caught_up = self._by_version(probe)
        self._caught_up = _Shared(caught_up) if caught_up is not None else None
        self._version: int | None = None
        self._generation = 0
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, KeyEntry] = {}  # by the key's lookup prefix
        self._key_prefixes: dict[str, str] = {}  # key id -> prefix
        self.sessions: dict[str, str] = {}  # live session token id -> its user
        self.videos: dict[str, VideoView] = {}

    @property
    def enabled(self) -> bool:
        return self._caught_up is not None

    async def current(self) -> int | None:
        """The generation to keep reads under when memory may answer now; None when it may
        not (read the database, keep nothing)."""
        looks = _LOOKS.get()
        if looks is None or not looks.open:
            return await self._look()
        if id(self) not in looks.answers:
            looks.answers[id(self)] = await self._look() is not None
        return self._generation if looks.answers[id(self)] else None

    async def _look(self) -> int | None:
        if self._caught_up is not None and await self._caught_up():
            return self._generation
        return None

    def _by_version(self, probe: Probe) -> Check:
        """SQLite's data version as a look: a new version drops everything held.

        Shared like Redis's look: the pragma is quick alone, but under load a look per request
        cost about a tenth of a status read's CPU (bench/api.md), probably in the GIL hand-over
        the driver makes around it."""

        async def unchanged_or_dropped() -> bool:
            version = probe()
            if version is None:
                return False
            if version != self._version:
                self.clear()
                self._version = version
            return True

        return unchanged_or_dropped

    def keep(self, generation: int | None, table: dict[str, Value], key: str, value: Value) -> None:
        """Hold `value`, read under `generation`, unless something changed since."""
        if generation is None or generation != self._generation:
            return
        if len(table) >= MAX_ENTRIES:
            table.clear()
        table[key] = value

    def keep_key(self, generation: int | None, prefix: str, entry: KeyEntry) -> None:
        if generation is not None and generation == self._generation:
            self._key_prefixes[entry.key_id] = prefix
        self.keep(generation, self.keys, prefix, entry)

    def take(self, notice: Notice) -> None:
        """A bus observer: drop what `notice` says changed (everything, on RESYNC)."""
        if notice.topic is Topic.WAKE:
            return  # work is due: nothing a reader sees changed
        self._generation += 1
        match notice.topic:
            case Topic.VIDEO:
                self.videos.pop(notice.id, None)
            case Topic.ACCOUNT:
                self.accounts.pop(notice.id, None)
            case Topic.KEY:
                prefix = self._key_prefixes.pop(notice.id, None)
                if prefix is not None:
                    self.keys.pop(prefix, None)
            case Topic.SESSION:
                self.sessions.pop(notice.id, None)
            case _:
                self.clear()

    def clear(self) -> None:
        self._generation += 1
        for table in (self.accounts, self.keys, self._key_prefixes, self.sessions, self.videos):
            table.clear()


class _Shared:
    """One `check` at a time, shared by every caller that asked before it began: a caller
    waits for the next check to start, never takes the answer of one already under way."""

    def __init__(self, check: Check) -> None:
        self._check = check
        self._next: asyncio.Future[bool] | None = None
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self) -> bool:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())
        return await asyncio.shield(waiting)

    async def _run(self) -> None:
        waiting: asyncio.Future[bool] | None = None
        try:
            while (waiting := self._next) is not None:
                self._next = None
                try:
                    answer = await asyncio.wait_for(self._check(), CHECK_TIMEOUT_SECONDS)
                except Exception:  # any failure means "unknown": read the database
                    answer = False
                waiting.set_result(answer)
        finally:
            # Cancelled (the loop is closing): nobody is left waiting for an answer.
            for pending in (waiting, self._next):
                if pending is not None and not pending.done():
                    pending.set_result(False)
            self._next = None
            self._runner = None
