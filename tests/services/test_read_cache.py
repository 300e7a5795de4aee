"""The read cache on SQLite: two handles on one database file stand for two processes; what one
changes, the other's memory never answers for again (`PRAGMA data_version`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from reelforge.bus import LocalBus
from reelforge.db import migrate
from reelforge.db.engine import Database
from reelforge.domain.accounts import Role
from reelforge.domain.catalog import provider
from reelforge.domain.errors import NotFoundError
from reelforge.runtime import read_cache
from reelforge.services import tokens as tokens_module
from reelforge.services.accounts import Accounts
from reelforge.services.keys import ApiKeys
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.read_cache import ReadCache
from reelforge.services.sessions import Sessions
from reelforge.services.tokens import Tokens
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import open_storage
from tests.support.accounts import FAST_HASHER, PASSWORD

pytestmark = pytest.mark.anyio


class Process:
    """The services one process would hold, with its own database handle and cache."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        bus = LocalBus()
        self.cache = read_cache(self.database, bus, None)
        self.accounts = Accounts(self.database, FAST_HASHER, cache=self.cache, bus=bus)
        self.keys = ApiKeys(self.database, cache=self.cache, bus=bus)
        self.tokens = Tokens("s" * 40, timedelta(minutes=5))
        self.sessions = Sessions(self.database, self.tokens, cache=self.cache, bus=bus)
        self.videos = Videos(
            self.database,
            open_storage("memory://"),
            provider("emulator"),
            Lifecycle(self.database, bus),
            max_prompt_length=1000,
            cache=self.cache,
        )


@pytest.fixture
async def pair(tmp_path: Path) -> tuple[Process, Process]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await migrate.upgrade(url)
    one, other = Process(url), Process(url)
    yield one, other
    for each in (one, other):
        await each.database.close()


async def test_sqlite_in_a_file_keeps_reads_and_postgres_alone_does_not(
    pair: tuple[Process, Process], postgres_url: str
) -> None:
    assert pair[0].cache.enabled
    await migrate.upgrade(postgres_url)
    database = Database(postgres_url)
    try:
        assert not read_cache(database, LocalBus(), None).enabled
        assert await ReadCache().current() is None
    finally:
        await database.close()


async def test_a_revoked_key_is_refused_by_the_other_at_once(
    pair: tuple[Process, Process],
) -> None:
    one, other = pair
    ada = await one.accounts.create("ada@example.org", PASSWORD)
    info, key = await one.keys.create(ada)
    for _ in range(2):
        assert await other.keys.authenticate(key) == ada
    assert other.cache.keys, "the other process holds the key now"

    await one.keys.revoke(ada, info.id)

    assert await other.keys.authenticate(key) is None


async def test_a_disabled_user_or_changed_role_is_seen_by_the_other_at_once(
    pair: tuple[Process, Process],
) -> None:
    one, other = pair
    ada = await one.accounts.create("ada@example.org", PASSWORD)
    _, key = await one.keys.create(ada)
    token = one.tokens.issue(ada)
    assert (await other.accounts.get(ada.id)) == ada
    assert (await other.keys.authenticate(key)) == ada

    promoted = await one.accounts.set_role(ada.email, Role.ADMIN)
    assert (await other.accounts.get(ada.id)) == promoted
    await one.accounts.set_disabled(ada.email, True)

    assert await other.keys.authenticate(key) is None
    account = await other.accounts.get(other.tokens.subject(token) or "")
    assert account is not None
    assert account.disabled


async def test_a_changed_video_is_seen_by_the_other_and_stays_its_owners(
    pair: tuple[Process, Process],
) -> None:
    one, other = pair
    ada = await one.accounts.create("ada@example.org", PASSWORD)
    bob = await one.accounts.create("bob@example.org", PASSWORD)
    view, _ = await one.videos.create(ada, NewVideo(prompt="a fox"))
    assert (await other.videos.get(ada, view.id)).status == "queued"
    assert view.id in other.cache.videos
    with pytest.raises(NotFoundError):
        await other.videos.get(bob, view.id)

    await one.videos.cancel(ada, view.id)
    assert (await other.videos.get(ada, view.id)).status == "cancelled"
    await one.videos.delete(ada, view.id)
    with pytest.raises(NotFoundError):
        await other.videos.get(ada, view.id)


async def test_an_ended_session_is_refused_by_the_other_at_once(
    pair: tuple[Process, Process],
) -> None:
    one, other = pair
    ada = await one.accounts.create("ada@example.org", PASSWORD)
    value = one.sessions.start(ada)
    for _ in range(2):
        assert await other.sessions.user_id(value) == ada.id

    await one.sessions.end(value)

    assert await other.sessions.user_id(value) is None


async def test_a_remembered_token_still_expires(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await accounts.create("ada@example.org", PASSWORD)
    tokens = Tokens("s" * 40, timedelta(minutes=5))
    token = tokens.issue(ada)
    assert tokens.subject(token) == ada.id
    assert tokens.subject(token) == ada.id  # from memory now

    later = tokens_module.time.time() + 301
    monkeypatch.setattr(tokens_module, "time", SimpleNamespace(time=lambda: later))

    assert tokens.subject(token) is None


async def test_concurrent_looks_share_one_check_begun_after_each_asked() -> None:
    started, gate = 0, asyncio.Event()

    async def check() -> bool:
        nonlocal started
        started += 1
        await gate.wait()
        return True

    cache = ReadCache(caught_up=check)
    first = asyncio.create_task(cache.current())
    await asyncio.sleep(0.01)
    late = [asyncio.create_task(cache.current()) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert started == 1
    gate.set()

    assert await first is not None
    assert all(answer is not None for answer in await asyncio.gather(*late))
    # The late callers did not take the answer of the check under way when they asked.
    assert started == 2


async def test_a_failing_check_means_read_the_database() -> None:
    async def check() -> bool:
        raise ConnectionError("redis is down")

    assert await ReadCache(caught_up=check).current() is None


async def test_concurrent_readers_share_one_look_at_sqlites_data_version(
    pair: tuple[Process, Process],
) -> None:
    one, other = pair
    probe = other.database.commit_probe()
    assert probe is not None
    looks = 0

    def counted() -> int | None:
        nonlocal looks
        looks += 1
        return probe()

    cache = ReadCache(probe=counted)
    answers = await asyncio.gather(*(cache.current() for _ in range(20)))
    assert looks == 1
    assert None not in answers

    await one.accounts.create("grace@example.org", PASSWORD)  # the other process commits

    # The next reader's own look sees that commit and drops what was held.
    assert await cache.current() not in answers
    assert looks == 2
