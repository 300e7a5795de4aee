"""Quotas and budgets: how many videos a period allows, how much a month may cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from reelforge.domain.errors import InputError

# The most videos a quota can allow in one period: a 32-bit column on both databases.
MAX_VIDEOS_PER_PERIOD = 1_000_000_000


@dataclass(frozen=True)
class QuotaPolicy:
    """None means unlimited."""

    max_videos: int | None
    period_days: int
    monthly_budget: Decimal | None

    def __post_init__(self) -> None:
        if self.max_videos is not None and not 0 <= self.max_videos <= MAX_VIDEOS_PER_PERIOD:
            raise InputError(
                "max_videos", f"must be 0 to {MAX_VIDEOS_PER_PERIOD}, or null for unlimited"
            )
        if not 1 <= self.period_days <= 366:
            raise InputError("period_days", "must be 1 to 366")
        if self.monthly_budget is not None and self.monthly_budget < 0:
            raise InputError("monthly_budget", "must be 0 or more, or null for unlimited")


@dataclass(frozen=True)
class QuotaUsage:
    policy: QuotaPolicy
    period_started_at: datetime
    videos_used: int
    month_spend: Decimal

    @property
    def period_ends_at(self) -> datetime:
        return self.period_started_at + timedelta(days=self.policy.period_days)

    @property
    def videos_left(self) -> int | None:
        if self.policy.max_videos is None:
            return None
        return max(self.policy.max_videos - self.videos_used, 0)

    @property
    def budget_left(self) -> Decimal | None:
        if self.policy.monthly_budget is None:
            return None
        return max(self.policy.monthly_budget - self.month_spend, Decimal(0))


class LimitExceededError(Exception):
    """A create would pass the user's quota or budget; nothing was reserved."""

    def __init__(self, code: str, message: str, resets_at: datetime) -> None:
        self.code = code
        self.message = message
        self.resets_at = resets_at
        super().__init__(message)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


def current_period_start(started_at: datetime, period_days: int, now: datetime) -> datetime:
    """Roll a period forward by whole periods until it contains `now`."""
    if now < started_at:
        return started_at
    elapsed = (now - started_at) // timedelta(days=period_days)
    return started_at + elapsed * timedelta(days=period_days)


def check_limits(usage: QuotaUsage, cost: Decimal, now: datetime) -> None:
    """Raise LimitExceededError when one more video costing `cost` would pass a limit."""
    left = usage.videos_left
    if left is not None and left < 1:
        raise LimitExceededError(
            "quota_exceeded",
            f"video quota reached: {usage.policy.max_videos} per {usage.policy.period_days} days",
            usage.period_ends_at,
        )
    budget = usage.budget_left
    if budget is not None and cost > budget:
        raise LimitExceededError(
            "budget_exceeded",
            f"monthly budget reached: this video costs ${cost}, ${budget} of "
            f"${usage.policy.monthly_budget} is left this month",
            next_month(now),
        )
