"""What the admin's views show: activity per day, videos with their owner, jobs, deliveries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from reelforge.domain.videos import VideoView
from reelforge.domain.webhooks import DeliveryView

MAX_ACTIVITY_DAYS = 366
MAX_ADMIN_LIST = 200


@dataclass(frozen=True)
class DayActivity:
    """One day: videos created that day by how they stand now, and the ledger's net spend."""

    day: date
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0
    spend: Decimal = Decimal(0)

    @property
    def created(self) -> int:
        return self.completed + self.failed + self.cancelled + self.running

    def add(self, status: str, count: int) -> DayActivity:
        if status == "completed":
            return replace(self, completed=self.completed + count)
        if status == "failed":
            return replace(self, failed=self.failed + count)
        if status == "cancelled":
            return replace(self, cancelled=self.cancelled + count)
        return replace(self, running=self.running + count)

    def with_spend(self, amount: Decimal) -> DayActivity:
        return replace(self, spend=self.spend + amount)


@dataclass(frozen=True)
class OwnedVideo:
    video: VideoView
    owner_email: str
    last_error: str | None


@dataclass(frozen=True)
class JobRow:
    """A video as the job engine sees it: its lease, attempts and next check."""

    video: VideoView
    owner_email: str
    attempts: int
    next_check_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    lease_version: int
    submitted_at: datetime | None
    deadline_at: datetime | None
    deleted_at: datetime | None
    provider_video_id: str | None
    last_error: str | None


@dataclass(frozen=True)
class DeliveryRow:
    delivery: DeliveryView
    url: str
    owner_email: str
