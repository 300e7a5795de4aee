"""Admin routes: every user, and their quotas and budgets."""

from __future__ import annotations

from fastapi import APIRouter

from reelforge.api.auth import AdminAccount
from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute
from reelforge.api.errors import documented
from reelforge.api.schemas import AccountOut, Envelope, QuotaIn, UsageOut
from reelforge.domain.errors import NotFoundError
from reelforge.domain.quotas import QuotaPolicy

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=EdgeRoute)


@router.get("/users", responses=documented(401, 403), summary="All users")
async def list_users(_admin: AdminAccount, runtime: RuntimeDep) -> Envelope[list[AccountOut]]:
    return Envelope(data=[AccountOut.of(account) for account in await runtime.accounts.list()])


@router.get("/users/{user_id}/usage", responses=documented(401, 403, 404), summary="A user's usage")
async def user_usage(user_id: str, _admin: AdminAccount, runtime: RuntimeDep) -> Envelope[UsageOut]:
    account = await runtime.accounts.get(user_id)
    if account is None:
        raise NotFoundError("user", user_id)
    return Envelope(data=UsageOut.of(await runtime.videos.usage(account)))


@router.put(
    "/users/{user_id}/quota",
    responses=documented(400, 401, 403, 404, 422),
    summary="Set a user's quota and monthly budget",
)
async def set_quota(
    user_id: str, body: QuotaIn, _admin: AdminAccount, runtime: RuntimeDep
) -> Envelope[UsageOut]:
    policy = QuotaPolicy(body.max_videos, body.period_days, body.monthly_budget)
    return Envelope(data=UsageOut.of(await runtime.videos.set_policy(user_id, policy)))
