"""The account page (password, API keys) and the admin's dashboard and job inspector."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reelforge.api.deps import RuntimeDep
from reelforge.domain.errors import NotFoundError
from reelforge.runtime import Runtime
from reelforge.web.pages import PageAccount, not_found
from reelforge.web.templating import render

router = APIRouter(include_in_schema=False)

CHART_DAYS = 30
# The dashboard shows the provider's health as of now; a hung check must not hang the page.
HEALTH_TIMEOUT_SECONDS = 3.0


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, account: PageAccount, runtime: RuntimeDep) -> HTMLResponse:
    return render(
        request,
        "account.html",
        account,
        {"keys": await runtime.keys.list(account), "usage": await runtime.quotas.usage(account)},
    )


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, account: PageAccount, runtime: RuntimeDep) -> HTMLResponse:
    if not account.is_admin:
        return not_found(request, account)
    activity = await runtime.admin.activity(CHART_DAYS)
    users = await runtime.accounts.list()
    usages = {user.id: await runtime.quotas.usage(user) for user in users}
    emails = {user.id: user.email for user in users}
    keys = [key for user in users for key in await runtime.keys.list(user)]
    return render(
        request,
        "admin.html",
        account,
        {
            "activity": activity,
            "activity_json": [
                {
                    "day": day.day.isoformat(),
                    "completed": day.completed,
                    "failed": day.failed,
                    "cancelled": day.cancelled,
                    "running": day.running,
                    "spend": str(day.spend),
                }
                for day in activity
            ],
            "totals": {
                "created": sum(day.created for day in activity),
                "failed": sum(day.failed for day in activity),
                "spend": sum((day.spend for day in activity), start=Decimal(0)),
            },
            "users": users,
            "usages": usages,
            "keys": sorted(keys, key=lambda key: key.created_at, reverse=True),
            "emails": emails,
            "failed": await runtime.admin.failed_videos(25),
            "jobs": await runtime.admin.recent_jobs(25),
            "deliveries": await runtime.admin.deliveries(None, 25),
            "health": await _health(runtime),
            "provider": runtime.videos.spec,
        },
    )


async def _health(runtime: Runtime) -> dict[str, str | None]:
    """Each dependency's check: None when well, else what went wrong."""
    found: dict[str, str | None] = {}
    for name, check in runtime.checks.items():
        try:
            with anyio.fail_after(HEALTH_TIMEOUT_SECONDS):
                await check()
            found[name] = None
        except TimeoutError:
            found[name] = f"no answer within {HEALTH_TIMEOUT_SECONDS:g} s"
        except Exception as exc:  # a failed check is what this reports, whatever it was
            found[name] = f"{type(exc).__name__}: {exc}"[:300]
    return found


@router.get("/admin/jobs/{video_id}", response_class=HTMLResponse)
async def job_page(
    video_id: str, request: Request, account: PageAccount, runtime: RuntimeDep
) -> HTMLResponse:
    if not account.is_admin:
        return not_found(request, account)
    try:
        job = await runtime.admin.job(video_id)
    except NotFoundError:
        return not_found(request, account, "job")
    events = await runtime.admin.events(video_id)
    return render(request, "job.html", account, {"job": job, "events": events})


@router.get("/admin/jobs")
async def find_job(account: PageAccount, id: Annotated[str, Query(max_length=80)] = "") -> Response:
    """The inspector's search box: straight to the job's page."""
    return RedirectResponse(f"/admin/jobs/{quote(id.strip(), safe='')}", status_code=303)
