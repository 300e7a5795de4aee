"""Admin routes: users, quotas and budgets, activity over time, failed videos, jobs, deliveries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from reelforge.api.auth import AdminAccount
from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute
from reelforge.api.errors import documented
from reelforge.api.schemas import (
    AccountOut,
    Envelope,
    EventOut,
    KeyOut,
    Money,
    QuotaIn,
    UsageOut,
    VideoOut,
)
from reelforge.api.webhooks import DeliveryOut
from reelforge.domain.accounts import parse_role
from reelforge.domain.admin import MAX_ACTIVITY_DAYS, MAX_ADMIN_LIST, DayActivity, DeliveryRow
from reelforge.domain.errors import NotFoundError
from reelforge.domain.quotas import QuotaPolicy

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=EdgeRoute)

Limit = Annotated[int, Query(ge=1, le=MAX_ADMIN_LIST)]


class NewUserIn(BaseModel):
    email: str
    password: str = Field(description="At least 10 characters.")
    role: str = Field(default="user", description="user or admin")
    display_name: str = Field(default="", max_length=200)


class UserPatchIn(BaseModel):
    disabled: bool


class DayOut(BaseModel):
    day: date
    created: int
    completed: int
    failed: int
    cancelled: int
    running: int
    spend: Money

    @classmethod
    def of(cls, day: DayActivity) -> DayOut:
        return cls(
            day=day.day,
            created=day.created,
            completed=day.completed,
            failed=day.failed,
            cancelled=day.cancelled,
            running=day.running,
            spend=day.spend,
        )


class FailedOut(BaseModel):
    video: VideoOut
    owner_email: str
    last_error: str | None


class JobOut(BaseModel):
    video: VideoOut
    owner_email: str
    attempts: int
    next_check_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    lease_version: int
    submitted_at: datetime | None
    deleted_at: datetime | None
    provider_video_id: str | None
    last_error: str | None
    events: list[EventOut] = Field(default_factory=list)


class AdminDeliveryOut(DeliveryOut):
    url: str
    owner_email: str

    @classmethod
    def of_row(cls, row: DeliveryRow) -> AdminDeliveryOut:
        return cls(
            **DeliveryOut.of(row.delivery).model_dump(), url=row.url, owner_email=row.owner_email
        )


@router.get("/users", responses=documented(401, 403), summary="All users")
async def list_users(_admin: AdminAccount, runtime: RuntimeDep) -> Envelope[list[AccountOut]]:
    return Envelope(data=[AccountOut.of(account) for account in await runtime.accounts.list()])


@router.post(
    "/users", status_code=201, responses=documented(400, 401, 403, 409, 422), summary="Add a user"
)
async def create_user(
    body: NewUserIn, _admin: AdminAccount, runtime: RuntimeDep
) -> Envelope[AccountOut]:
    account = await runtime.accounts.create(
        body.email, body.password, role=parse_role(body.role), display_name=body.display_name
    )
    return Envelope(data=AccountOut.of(account))


@router.patch(
    "/users/{user_id}",
    responses=documented(400, 401, 403, 404, 409, 422),
    summary="Disable or enable a user",
)
async def patch_user(
    user_id: str, body: UserPatchIn, admin: AdminAccount, runtime: RuntimeDep
) -> Envelope[AccountOut]:
    return Envelope(
        data=AccountOut.of(await runtime.admin.set_disabled(admin, user_id, body.disabled))
    )


@router.delete(
    "/keys/{key_id}", responses=documented(401, 403, 404), summary="Revoke any user's API key"
)
async def revoke_key(key_id: str, _admin: AdminAccount, runtime: RuntimeDep) -> Envelope[KeyOut]:
    return Envelope(data=KeyOut.of(await runtime.keys.revoke_any(key_id)))


@router.get("/users/{user_id}/usage", responses=documented(401, 403, 404), summary="A user's usage")
async def user_usage(user_id: str, _admin: AdminAccount, runtime: RuntimeDep) -> Envelope[UsageOut]:
    account = await runtime.accounts.get(user_id)
    if account is None:
        raise NotFoundError("user", user_id)
    return Envelope(data=UsageOut.of(await runtime.quotas.usage(account)))


@router.put(
    "/users/{user_id}/quota",
    responses=documented(400, 401, 403, 404, 422),
    summary="Set a user's quota and monthly budget",
)
async def set_quota(
    user_id: str, body: QuotaIn, _admin: AdminAccount, runtime: RuntimeDep
) -> Envelope[UsageOut]:
    policy = QuotaPolicy(body.max_videos, body.period_days, body.monthly_budget)
    return Envelope(data=UsageOut.of(await runtime.quotas.set_policy(user_id, policy)))


@router.get(
    "/activity",
    responses=documented(401, 403, 422),
    summary="Videos and spend per day (UTC), oldest first",
)
async def activity(
    _admin: AdminAccount,
    runtime: RuntimeDep,
    days: Annotated[int, Query(ge=1, le=MAX_ACTIVITY_DAYS)] = 30,
) -> Envelope[list[DayOut]]:
    return Envelope(data=[DayOut.of(day) for day in await runtime.admin.activity(days)])


@router.get("/videos/failed", responses=documented(401, 403, 422), summary="Failed videos")
async def failed_videos(
    _admin: AdminAccount, runtime: RuntimeDep, limit: Limit = 50
) -> Envelope[list[FailedOut]]:
    rows = await runtime.admin.failed_videos(limit)
    return Envelope(
        data=[
            FailedOut(
                video=VideoOut.of(r.video, runtime.links),
                owner_email=r.owner_email,
                last_error=r.last_error,
            )
            for r in rows
        ]
    )


@router.get("/jobs/{video_id}", responses=documented(401, 403, 404), summary="Inspect a job")
async def inspect_job(video_id: str, admin: AdminAccount, runtime: RuntimeDep) -> Envelope[JobOut]:
    job = await runtime.admin.job(video_id)
    events = await runtime.admin.events(video_id)
    return Envelope(
        data=JobOut(
            video=VideoOut.of(job.video, runtime.links),
            owner_email=job.owner_email,
            attempts=job.attempts,
            next_check_at=job.next_check_at,
            lease_owner=job.lease_owner,
            lease_until=job.lease_until,
            lease_version=job.lease_version,
            submitted_at=job.submitted_at,
            deleted_at=job.deleted_at,
            provider_video_id=job.provider_video_id,
            last_error=job.last_error,
            events=[EventOut.of(event) for event in events],
        )
    )


@router.get("/deliveries", responses=documented(400, 401, 403, 422), summary="Every delivery")
async def deliveries(
    _admin: AdminAccount,
    runtime: RuntimeDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Limit = 50,
) -> Envelope[list[AdminDeliveryOut]]:
    rows = await runtime.admin.deliveries(status, limit)
    return Envelope(data=[AdminDeliveryOut.of_row(row) for row in rows])


@router.post(
    "/deliveries/{delivery_id}/replay",
    responses=documented(401, 403, 404),
    summary="Send any user's delivery again now",
)
async def replay(
    delivery_id: str, _admin: AdminAccount, runtime: RuntimeDep
) -> Envelope[DeliveryOut]:
    return Envelope(data=DeliveryOut.of(await runtime.admin.replay(delivery_id)))
