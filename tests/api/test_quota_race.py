"""Quota and budget over HTTP under a burst: 50 concurrent creates, 10 left, on both databases."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from reelforge.api.app import create_app
from reelforge.domain.quotas import QuotaPolicy
from tests.support.api import callers, runtime_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app_on_each_database(make_settings: Any, migrated_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_url=migrated_url, embedded_worker=False, create_rate_limit="1000/minute"
    )
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (QuotaPolicy(max_videos=10, period_days=30, monthly_budget=None), "quota_exceeded"),
        (QuotaPolicy(max_videos=None, period_days=30, monthly_budget=4), "budget_exceeded"),
    ],
    ids=["quota", "budget"],
)
async def test_fifty_concurrent_creates_admit_exactly_ten(
    app_on_each_database: FastAPI, policy: QuotaPolicy, code: str
) -> None:
    async with AsyncExitStack() as stack:
        ada = await (await callers(app_on_each_database, stack))("ada@example.org")
        await runtime_of(app_on_each_database).quotas.set_policy(ada.account.id, policy)
        outcomes: Counter[tuple[int, str | None]] = Counter()

        async def create(i: int) -> None:
            response = await ada.client.post("/api/videos", json={"prompt": f"race {i}"})
            outcomes[(response.status_code, response.json().get("code"))] += 1

        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(create, i)

        assert outcomes == Counter({(201, None): 10, (429, code): 40})
        listed = await ada.client.get("/api/videos", params={"limit": 100})
        assert len(listed.json()["data"]) == 10
