"""Live video updates for this process's watchers (SSE streams, socket.io clients), fed by the bus.

Across processes: every process subscribes to the bus once and pushes only to the watchers
connected to it. python-socketio's AsyncRedisManager is not used. The bus already brings every
notice to every process (through Redis when REDIS_URL is set), and a notice is only a hint: what a
watcher receives is the video re-read through `Videos.get` with a watcher's own account, which
only the process holding that watcher can do. A second pub/sub path would carry payloads read
somewhere else, past that check, and would need its own answer for lost messages; here a lost
notice is the bus's RESYNC, and every watcher re-reads what it follows.

One read per notice serves all of a video's watchers (the owner and admins see the same video),
reads of one video never overlap (a notice during a read asks for one more read after it), and
each watcher drops a state read before one it already has, so a watcher never goes back in time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup, TaskStatus

from reelforge.api.schemas import VideoOut
from reelforge.bus import Bus, Notice, Topic
from reelforge.bus.seats import LocalSeats, Seat, Seats
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import NotFoundError
from reelforge.domain.states import VideoStatus
from reelforge.domain.videos import MAX_LIST_LIMIT, VideoView
from reelforge.logs import get_logger
from reelforge.services.links import FileLinks
from reelforge.services.videos import Videos

log = get_logger("reelforge.live")

Authenticate = Callable[[], Awaitable[Account | None]]
UNFINISHED = [VideoStatus.QUEUED.value, VideoStatus.IN_PROGRESS.value]
# Most videos a (re)connecting stream of all a user's videos is sent at once.
CATCH_UP_LIMIT = 500
# Video reads in flight at once for pushes, so a burst of notices can't take the whole pool.
READS_AT_ONCE = 8
# Reads `follow` makes at most while the video keeps changing under it.
FOLLOW_READS = 3


class Update:
    """One video's state as pushed: the payload once, and its JSON once for every stream."""

    __slots__ = ("data", "event_id", "payload", "read_at", "video_id")

    def __init__(self, video_id: str, payload: dict[str, object], read_at: int) -> None:
        self.video_id = video_id
        self.payload = payload
        self.data = json.dumps(payload, separators=(",", ":"))
        self.read_at = read_at
        # Wall-clock milliseconds at the read: what a reconnecting SSE client sends back as
        # Last-Event-ID, and all `catch_up` needs to know what it may have missed.
        self.event_id = str(time.time_ns() // 1_000_000)

    @classmethod
    def of(cls, view: VideoView, read_at: int, links: FileLinks) -> Update:
        """The video as `GET /api/videos/{id}` has it in `data`, plus the guide's `videoId`."""
        payload = VideoOut.of(view, links).model_dump(mode="json")
        return cls(view.id, {"videoId": view.id, **payload}, read_at)

    @classmethod
    def gone(cls, video_id: str, read_at: int) -> Update:
        """A followed video that was deleted (or is no longer the watcher's to see)."""
        return cls(video_id, {"videoId": video_id, "id": video_id, "deleted": True}, read_at)


class TooManyConnections(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} live-update connections per user")


Send = Callable[[Update], Awaitable[None]]
Close = Callable[[], Awaitable[None]]


class Watcher:
    """One connection: whose it is, which videos it follows, where its updates go."""

    def __init__(
        self,
        account: Account,
        authenticate: Authenticate,
        send: Send,
        close: Close,
        *,
        everything: bool,
        seat: Seat,
    ) -> None:
        self.account = account
        self.seat = seat
        self.authenticate = authenticate
        self.everything = everything
        self.videos: set[str] = set()
        self.closed = False
        self._send = send
        self._close = close
        # video id -> monotonic time of the read behind the last update sent for it
        self._sent: dict[str, int] = {}
        # videos being read for `follow` that changed during the read
        self._stale: set[str] = set()

    def sees(self, owner_id: str | None) -> bool:
        """Whether this watcher follows every video of `owner_id`'s (its own, or an admin's)."""
        return self.everything and (self.account.is_admin or owner_id == self.account.id)

    async def deliver(self, update: Update) -> None:
        last = self._sent.get(update.video_id)
        if self.closed or (last is not None and update.read_at < last):
            return
        self._sent[update.video_id] = update.read_at
        await self._send(update)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._close()


class Live:
    """This process's watchers, and the one bus subscription that keeps them up to date."""

    def __init__(
        self,
        bus: Bus,
        videos: Videos,
        links: FileLinks,
        *,
        connections_per_user: int,
        horizon: timedelta,
        seats: Seats | None = None,
    ) -> None:
        self._bus = bus
        self._videos = videos
        self._links = links
        self._cap = connections_per_user
        # The cap counts a user's connections in every process (LocalSeats: this one only).
        self._seats = seats or LocalSeats()
        # No video changes later than this after it was created (the job deadline), so a
        # reconnecting stream looks no further back for what it missed.
        self._horizon = horizon
        self._watchers: set[Watcher] = set()
        self._everything: set[Watcher] = set()  # watchers of all their videos
        self._following: dict[str, set[Watcher]] = {}
        self._pending: dict[str, set[Watcher]] = {}  # `follow` reads in flight
        self._reading: dict[str, bool] = {}  # video id -> changed again during its read
        self._reads = anyio.CapacityLimiter(READS_AT_ONCE)
        self._tasks: TaskGroup | None = None

    async def connect(
        self,
        account: Account,
        authenticate: Authenticate,
        send: Send,
        close: Close,
        *,
        everything: bool = False,
    ) -> Watcher:
        """A new watcher of `account`'s; TooManyConnections past the per-user cap."""
        seat = await self._seats.take(account.id, self._cap)
        if seat is None:
            raise TooManyConnections(self._cap)
        watcher = Watcher(account, authenticate, send, close, everything=everything, seat=seat)
        self._watchers.add(watcher)
        if everything:
            self._everything.add(watcher)
        return watcher

    def disconnect(self, watcher: Watcher) -> None:
        if watcher not in self._watchers:
            return
        watcher.closed = True
        self._watchers.discard(watcher)
        self._everything.discard(watcher)
        for video_id in watcher.videos:
            self._unlink(watcher, video_id)
        if self._tasks is not None:
            self._start(self._seats.release, watcher.seat)

    async def follow(self, watcher: Watcher, video_id: str) -> bool:
        """Follow `video_id` if the watcher's account may see it, sending its state now;
        False (and nothing sent) for a video that is missing or someone else's."""
        pending = self._pending.setdefault(video_id, set())
        pending.add(watcher)  # `_refresh` marks the read stale if the video changes meanwhile
        try:
            # A video that changes during every read is followed with the last one: the
            # push of its next change counts it in.
            for _ in range(FOLLOW_READS):
                watcher._stale.discard(video_id)
                read_at = time.monotonic_ns()
                view = await self._videos.get(watcher.account, video_id)
                if video_id not in watcher._stale:
                    break
        except NotFoundError:
            return False
        finally:
            pending.discard(watcher)
            if not pending:
                self._pending.pop(video_id, None)
        if watcher.closed:
            return False
        watcher.videos.add(video_id)
        self._following.setdefault(video_id, set()).add(watcher)
        await watcher.deliver(Update.of(view, read_at, self._links))
        return True

    def followers(self, video_id: str) -> int:
        """How many of this process's connections follow `video_id` and have its state."""
        return len(self._following.get(video_id, ()))

    def unfollow(self, watcher: Watcher, video_id: str) -> None:
        watcher.videos.discard(video_id)
        self._unlink(watcher, video_id)

    async def catch_up(self, watcher: Watcher, since: datetime | None) -> None:
        """Send an all-videos watcher its unfinished videos and, given when it last heard from
        us, every video that may have changed since."""
        read_at = time.monotonic_ns()
        views = await self._unfinished(watcher.account)
        if since is not None:
            views += await self._created_since(watcher.account, since - self._horizon)
        seen: set[str] = set()
        for view in views:
            if view.id not in seen:
                seen.add(view.id)
                await watcher.deliver(Update.of(view, read_at, self._links))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow the bus until cancelled; started once the subscription is in place."""
        async with self._bus.subscribe() as notices, anyio.create_task_group() as tasks:
            self._tasks = tasks
            tasks.start_soon(self._seats.keep)
            task_status.started()
            try:
                async for notice in notices:
                    self._take(notice)
            finally:
                self._tasks = None

    async def close(self) -> None:
        """Close every watcher (server shutdown): SSE streams end, socket.io clients are
        disconnected, and all of them reconnect elsewhere or later."""
        for watcher in list(self._watchers):
            await watcher.close()
            self.disconnect(watcher)
            with anyio.CancelScope(shield=True):
                await self._seats.release(watcher.seat)

    def _take(self, notice: Notice) -> None:
        match notice.topic:
            case Topic.VIDEO:
                self._refresh(notice.id, notice.owner_id)
            case Topic.RESYNC:
                for video_id in list(self._following):
                    self._refresh(video_id, None)
                for watcher in self._everything:
                    self._start(self._catch_up_again, watcher)
            case Topic.ACCOUNT:
                self._recheck(notice.id)
            case Topic.KEY if notice.owner_id is not None:
                self._recheck(notice.owner_id)
            case _:
                pass

    def _refresh(self, video_id: str, owner_id: str | None) -> None:
        for watcher in self._pending.get(video_id, ()):
            watcher._stale.add(video_id)
        if video_id in self._reading:
            self._reading[video_id] = True
        elif self._targets(video_id, owner_id):
            self._reading[video_id] = False
            self._start(self._read_and_push, video_id, owner_id)

    def _targets(self, video_id: str, owner_id: str | None) -> list[Watcher]:
        targets = list(self._following.get(video_id, ()))
        followers = set(targets)
        targets += [w for w in self._everything if w.sees(owner_id) and w not in followers]
        return targets

    async def _read_and_push(self, video_id: str, owner_id: str | None) -> None:
        try:
            while True:
                async with self._reads:
                    await self._push(video_id, owner_id)
                if not self._reading[video_id]:
                    break
                self._reading[video_id] = False
        finally:
            del self._reading[video_id]

    async def _push(self, video_id: str, owner_id: str | None) -> None:
        targets = self._targets(video_id, owner_id)
        if not targets:
            return
        read_at = time.monotonic_ns()
        try:
            view = await self._videos.get(targets[0].account, video_id)
            update = Update.of(view, read_at, self._links)
        except NotFoundError:
            update = Update.gone(video_id, read_at)
        for watcher in self._targets(video_id, owner_id):
            if watcher.everything and owner_id is None and update.payload.get("deleted"):
                continue  # a RESYNC's re-read: only followers knew of it
            await self._deliver(watcher, update)
            if update.payload.get("deleted"):
                self.unfollow(watcher, video_id)

    def _recheck(self, user_id: str) -> None:
        for watcher in self._watchers:
            if watcher.account.id == user_id:
                self._start(self._reauthenticate, watcher)

    async def _reauthenticate(self, watcher: Watcher) -> None:
        """A watcher's account or key changed: a credential that no longer works closes it; a
        changed role re-reads what it follows, which drops what it may no longer see."""
        account = await watcher.authenticate()
        if account is None:
            await watcher.close()
            self.disconnect(watcher)
            return
        watcher.account = account
        for video_id in list(watcher.videos):
            self.unfollow(watcher, video_id)
            if not await self.follow(watcher, video_id):
                await self._deliver(watcher, Update.gone(video_id, time.monotonic_ns()))

    async def _catch_up_again(self, watcher: Watcher) -> None:
        await self.catch_up(watcher, utcnow())

    async def _deliver(self, watcher: Watcher, update: Update) -> None:
        try:
            await watcher.deliver(update)
        except Exception:
            log.exception("a live update could not be sent; closing that connection")
            await watcher.close()
            self.disconnect(watcher)

    def _start(self, job: Callable[..., Awaitable[None]], *args: object) -> None:
        async def guarded() -> None:
            try:
                await job(*args)
            except Exception:
                log.exception("live update failed", job=job.__name__)

        assert self._tasks is not None, "Live.run has not started"
        self._tasks.start_soon(guarded)

    def _unlink(self, watcher: Watcher, video_id: str) -> None:
        followers = self._following.get(video_id)
        if followers is not None:
            followers.discard(watcher)
            if not followers:
                del self._following[video_id]

    async def _unfinished(self, account: Account) -> list[VideoView]:
        return await self._pages(account, status=UNFINISHED, until=None)

    async def _created_since(self, account: Account, since: datetime) -> list[VideoView]:
        return await self._pages(account, status=None, until=since)

    async def _pages(
        self, account: Account, *, status: list[str] | None, until: datetime | None
    ) -> list[VideoView]:
        views: list[VideoView] = []
        after = None
        while len(views) < CATCH_UP_LIMIT:
            page = await self._videos.page(
                account, after=after, limit=MAX_LIST_LIMIT, status=status
            )
            for view in page.items:
                if until is not None and view.created_at < until:
                    return views
                views.append(view)
            if not page.has_more or not page.items:
                break
            after = page.items[-1].id
        return views[:CATCH_UP_LIMIT]
