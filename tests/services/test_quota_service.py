"""Quotas on a real database of each dialect: a user's use of their period, an admin's change."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from reelforge.db.engine import Database
from reelforge.db.models import Quota, Video
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import NotFoundError
from reelforge.domain.quotas import QuotaPolicy
from reelforge.services.quotas import Quotas
from reelforge.services.videos import NewVideo, Videos

pytestmark = pytest.mark.anyio

TEN_A_WEEK = QuotaPolicy(max_videos=10, period_days=7, monthly_budget=Decimal("5.00"))


async def period_started_at(database: Database, account: Account) -> datetime | None:
    async with database.session() as session:
        return await session.scalar(
            select(Quota.period_started_at).where(Quota.user_id == account.id)
        )


async def test_a_new_policy_is_read_back_with_the_current_use(
    quotas: Quotas, videos: Videos, ada: Account
) -> None:
    await videos.create(ada, NewVideo(prompt="one", seconds="8"))  # $0.80

    usage = await quotas.set_policy(ada.id, TEN_A_WEEK)

    assert usage.policy == TEN_A_WEEK
    assert (usage.videos_used, usage.videos_left) == (1, 9)
    assert usage.budget_left == Decimal("4.20")
    assert await quotas.usage(ada) == usage


async def test_a_policy_for_nobody_is_not_found(quotas: Quotas) -> None:
    with pytest.raises(NotFoundError):
        await quotas.set_policy("user_nobody", TEN_A_WEEK)


async def test_an_ended_period_counts_nothing_and_moves_on_at_the_next_admission(
    quotas: Quotas, videos: Videos, ada: Account, database: Database
) -> None:
    await quotas.set_policy(ada.id, TEN_A_WEEK)
    old, _ = await videos.create(ada, NewVideo(prompt="last week"))
    ten_days_ago = utcnow() - timedelta(days=10)
    async with database.session() as session, session.begin():
        await session.execute(
            update(Quota).where(Quota.user_id == ada.id).values(period_started_at=ten_days_ago)
        )
        await session.execute(
            update(Video).where(Video.id == old.id).values(created_at=ten_days_ago)
        )

    usage = await quotas.usage(ada)

    assert usage.videos_used == 0
    assert usage.period_started_at - ten_days_ago == timedelta(days=7)
    # Reading moves nothing; the next admission writes the new period down.
    assert await period_started_at(database, ada) == ten_days_ago
    await videos.create(ada, NewVideo(prompt="this week"))
    assert await period_started_at(database, ada) == usage.period_started_at
    assert (await quotas.usage(ada)).videos_used == 1
