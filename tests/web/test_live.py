"""web.live on its own, fed by a real bus and database: what notices do to watchers (a credential
that stops working closes them, RESYNC re-reads, a deleted video is said once, nothing goes back
in time), ownership at follow, and the per-user cap."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import pytest

from reelforge.bus import LocalBus, Notice, Topic
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account
from reelforge.domain.catalog import provider
from reelforge.services.accounts import Accounts
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.links import FileLinks
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import open_storage
from reelforge.web.live import Live, TooManyConnections, Update, Watcher
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.anyio

CAP = 2

LINKS = FileLinks("a test secret of thirty-two characters", timedelta(minutes=60))


@dataclass
class Seen:
    """A connection's end: what it was sent, and whether it was closed."""

    account: Account
    accounts: Accounts
    updates: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    async def send(self, update: Update) -> None:
        self.updates.append(update.payload)

    async def close(self) -> None:
        self.closed = True

    async def authenticate(self) -> Account | None:
        account = await self.accounts.get(self.account.id)
        return None if account is None or account.disabled else account

    def statuses(self) -> list[Any]:
        return [update.get("status", "deleted") for update in self.updates]


@dataclass
class World:
    live: Live
    videos: Videos
    accounts: Accounts
    bus: LocalBus

    async def watch(self, account: Account, *, everything: bool = False) -> tuple[Watcher, Seen]:
        seen = Seen(account, self.accounts)
        watcher = await self.live.connect(
            account, seen.authenticate, seen.send, seen.close, everything=everything
        )
        return watcher, seen

    async def video(self, account: Account) -> str:
        view, _ = await self.videos.create(account, NewVideo(prompt="a fox"))
        return view.id


@pytest.fixture
async def world(database: Database, accounts: Accounts) -> AsyncIterator[World]:
    bus = LocalBus()
    storage, spec = open_storage("memory://"), provider("emulator")
    videos = Videos(database, storage, spec, Lifecycle(database, bus), max_prompt_length=1000)
    live = Live(bus, videos, LINKS, connections_per_user=CAP, horizon=timedelta(hours=3))
    async with anyio.create_task_group() as tasks:
        await tasks.start(live.run)
        yield World(live, videos, accounts, bus)
        tasks.cancel_scope.cancel()


@pytest.fixture
async def owner(accounts: Accounts) -> Account:
    return await accounts.create("owner@example.org", PASSWORD)


@pytest.fixture
async def stranger(accounts: Accounts) -> Account:
    return await accounts.create("stranger@example.org", PASSWORD)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` (a guard against a hang, not a timing assertion)."""
    with anyio.fail_after(30):
        while not condition():
            await anyio.sleep(0.005)


async def test_following_sends_the_state_and_every_change(world: World, owner: Account) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)

    assert await world.live.follow(watcher, video_id)
    await world.videos.cancel(owner, video_id)

    # /api reports a cancel as the protocol does: failed, with the code `cancelled`.
    await _until(lambda: seen.statuses() == ["queued", "failed"])
    assert seen.updates[-1]["error"]["code"] == "cancelled"


async def test_following_anothers_video_sends_nothing(
    world: World, owner: Account, stranger: Account
) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(stranger)

    assert not await world.live.follow(watcher, video_id)
    await world.videos.cancel(owner, video_id)
    # An update of the stranger's own video comes after the cancel's notice was handled.
    own = await world.video(stranger)
    await world.live.follow(watcher, own)

    assert [update["videoId"] for update in seen.updates] == [own]
    assert world.live.followers(video_id) == 0


async def test_disabling_the_account_closes_its_connections(
    world: World, owner: Account, accounts: Accounts
) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)
    await world.live.follow(watcher, video_id)

    await accounts.set_disabled(owner.email, True)
    await world.bus.publish(Notice(Topic.ACCOUNT, owner.id))

    await _until(lambda: seen.closed)
    assert world.live.followers(video_id) == 0
    await _seated(world, owner)  # its place is free again


async def test_a_revoked_key_closes_the_connections_it_opened(world: World, owner: Account) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)
    revoked = False

    async def by_key() -> Account | None:
        return None if revoked else owner

    watcher.authenticate = by_key
    await world.live.follow(watcher, video_id)

    revoked = True
    await world.bus.publish(Notice(Topic.KEY, "key_1", owner.id))

    await _until(lambda: seen.closed)


async def test_an_account_change_that_keeps_access_keeps_the_connection(
    world: World, owner: Account
) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)
    await world.live.follow(watcher, video_id)

    await world.bus.publish(Notice(Topic.ACCOUNT, owner.id))
    await world.videos.cancel(owner, video_id)

    await _until(lambda: "failed" in seen.statuses())
    assert not seen.closed


async def test_resync_re_reads_every_followed_video(world: World, owner: Account) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)
    await world.live.follow(watcher, video_id)

    await world.bus.publish(Notice(Topic.RESYNC, ""))

    await _until(lambda: len(seen.updates) == 2)
    assert seen.statuses() == ["queued", "queued"]


async def test_a_deleted_video_is_said_once_and_then_unfollowed(
    world: World, owner: Account
) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)
    await world.live.follow(watcher, video_id)

    await world.videos.delete(owner, video_id)

    await _until(lambda: world.live.followers(video_id) == 0)
    assert seen.updates[-1] == {"videoId": video_id, "id": video_id, "deleted": True}
    assert seen.statuses().count("deleted") == 1


async def test_a_watcher_of_all_videos_gets_its_owners_and_no_one_elses(
    world: World, owner: Account, stranger: Account
) -> None:
    _, seen = await world.watch(owner, everything=True)

    strangers = await world.video(stranger)
    owners = await world.video(owner)

    await _until(lambda: bool(seen.updates))
    assert [update["videoId"] for update in seen.updates] == [owners]
    assert strangers != owners


async def test_an_update_read_before_one_already_sent_is_dropped(
    world: World, owner: Account
) -> None:
    video_id = await world.video(owner)
    watcher, seen = await world.watch(owner)
    view = await world.videos.get(owner, video_id)

    await watcher.deliver(Update.of(view, read_at=2, links=LINKS))
    await watcher.deliver(Update.of(view, read_at=1, links=LINKS))

    assert len(seen.updates) == 1


async def test_each_user_holds_at_most_the_cap(
    world: World, owner: Account, stranger: Account
) -> None:
    held = [(await world.watch(owner))[0] for _ in range(CAP)]

    with pytest.raises(TooManyConnections):
        await world.watch(owner)
    await world.watch(stranger)
    world.live.disconnect(held[0])
    await _seated(world, owner)


async def _seated(world: World, account: Account) -> None:
    """A connection of `account`'s is admitted once a freed seat is released (a task)."""
    with anyio.fail_after(30):
        while True:
            try:
                await world.watch(account)
                return
            except TooManyConnections:
                await anyio.sleep(0.005)
