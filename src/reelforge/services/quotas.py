"""Quotas: a user's use of their limits, an admin's change of them, and the count at admission."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db import videos as queries
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import NotFoundError
from reelforge.domain.quotas import QuotaPolicy, QuotaUsage, current_period_start, month_start


class Quotas:
    """What each user may still create, and the limits an admin sets."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def usage(self, account: Account) -> QuotaUsage:
        now = utcnow()
        async with self._database.reading() as connection:
            quota = await queries.quota_of(connection, account.id)
            return await usage_of(connection, account.id, quota, now)

    async def set_policy(self, user_id: str, policy: QuotaPolicy) -> QuotaUsage:
        """Change a user's limits (an admin's action); the current period carries on."""
        now = utcnow()
        async with self._database.transaction() as connection:
            quota = await queries.set_quota(connection, user_id, policy)
            if quota is None:
                raise NotFoundError("user", user_id)
            return await usage_of(connection, user_id, quota, now)


async def usage_of(
    connection: AsyncConnection,
    user_id: str,
    quota: Row[Any] | None,
    now: datetime,
    *,
    moving: bool = False,
) -> QuotaUsage:
    """The user's use of their quota row now; `moving`: a period that ended is moved on in the
    database too (in a transaction that holds the quota row, as admission does)."""
    if quota is None:
        raise NotFoundError("quota of user", user_id)
    start = current_period_start(quota.period_started_at, quota.period_days, now)
    if moving and start != quota.period_started_at:
        await queries.start_quota_period(connection, user_id, start)
    policy = QuotaPolicy(quota.max_videos_per_period, quota.period_days, quota.monthly_budget)
    return QuotaUsage(
        policy=policy,
        period_started_at=start,
        videos_used=await queries.videos_counted_since(connection, user_id, start),
        month_spend=await queries.spend_since(connection, user_id, month_start(now)),
    )
