"""The admin's use cases: activity over time, users, failed videos, jobs and all deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from reelforge.db import admin as queries
from reelforge.db import webhooks
from reelforge.db.engine import Database
from reelforge.db.videos import events_of
from reelforge.domain.accounts import Account
from reelforge.domain.admin import (
    MAX_ACTIVITY_DAYS,
    MAX_ADMIN_LIST,
    DayActivity,
    DeliveryRow,
    JobRow,
    OwnedVideo,
)
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.videos import EventView
from reelforge.domain.webhooks import DeliveryView, check_delivery_status
from reelforge.services.accounts import Accounts


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ADMIN_LIST:
        raise InputError("limit", f"must be 1 to {MAX_ADMIN_LIST}")
    return limit


class Admin:
    """Reads across every user, and the few writes only an admin makes."""

    def __init__(self, database: Database, accounts: Accounts) -> None:
        self._database = database
        self._accounts = accounts

    async def activity(self, days: int) -> list[DayActivity]:
        """The last `days` days (today included), every day present, oldest first."""
        if not 1 <= days <= MAX_ACTIVITY_DAYS:
            raise InputError("days", f"must be 1 to {MAX_ACTIVITY_DAYS}")
        today = utcnow().date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, time.min, tzinfo=UTC)
        async with self._database.reading() as connection:
            found = await queries.activity_since(connection, since)
        return [
            found.get(day, DayActivity(day))
            for day in (first + timedelta(days=n) for n in range(days))
        ]

    async def failed_videos(self, limit: int = 50) -> list[OwnedVideo]:
        async with self._database.reading() as connection:
            return await queries.failed_videos(connection, _check_limit(limit))

    async def recent_jobs(self, limit: int = 50) -> list[JobRow]:
        async with self._database.reading() as connection:
            return await queries.recent_jobs(connection, _check_limit(limit))

    async def job(self, video_id: str) -> JobRow:
        """Any video's job, deleted ones included: what an inspector needs."""
        async with self._database.reading() as connection:
            found = await queries.job(connection, video_id)
        if found is None:
            raise NotFoundError("video", video_id)
        return found

    async def events(self, video_id: str) -> list[EventView]:
        async with self._database.session() as session:
            return await events_of(session, video_id)

    async def deliveries(self, status: str | None = None, limit: int = 50) -> list[DeliveryRow]:
        wanted = check_delivery_status(status)
        async with self._database.session() as session:
            return await queries.deliveries(session, wanted, _check_limit(limit))

    async def replay(self, delivery_id: str) -> DeliveryView:
        """Queue any user's delivery to be sent again now; attempts so far are kept."""
        replayed = await webhooks.replay(self._database, None, delivery_id, utcnow())
        if replayed is None:
            raise NotFoundError("webhook delivery", delivery_id)
        return replayed

    async def set_disabled(self, admin: Account, user_id: str, disabled: bool) -> Account:
        """Disable (or enable again) a user; an admin can't lock themself out."""
        account = await self._accounts.get(user_id)
        if account is None:
            raise NotFoundError("user", user_id)
        if disabled and account.id == admin.id:
            raise ConflictError("you can't disable your own account", field="disabled")
        # The account service tells every process (caches, live streams) once it is written.
        return await self._accounts.set_disabled(account.email, disabled)
