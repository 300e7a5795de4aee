"""A body field /api does not know is refused naming it (400 `unknown_parameter`), never
dropped unseen: a caller's typo must not quietly become a default."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reelforge.domain.accounts import Role
from tests.support.accounts import PASSWORD
from tests.support.api import Caller, MakeCaller

pytestmark = pytest.mark.anyio


@pytest.fixture
async def root(make_caller: MakeCaller) -> Caller:
    return await make_caller("root@example.org", Role.ADMIN)


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        ("/api/videos", {"prompt": "a fox", "qualtiy": "high"}, "qualtiy"),
        ("/api/videos/estimate", {"prompt": "a fox", "duration": 8}, "duration"),
        ("/api/keys", {"name": "ci", "scopes": ["read"]}, "scopes"),
        ("/api/webhooks/endpoints", {"url": "https://a.example.org/", "secret": "x"}, "secret"),
    ],
)
async def test_unknown_body_fields_are_refused_by_name(
    root: Caller, path: str, body: dict[str, Any], unknown: str
) -> None:
    before = (await root.client.get("/api/videos")).json()["data"]

    response = await root.client.post(path, json=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "unknown_parameter"
    assert response.json()["field"] == unknown
    assert response.json()["error"].startswith(f"{unknown}: unknown field")
    assert (await root.client.get("/api/videos")).json()["data"] == before
    assert (await root.client.get("/api/webhooks/endpoints")).json()["data"] == []


async def test_an_unknown_quota_field_changes_no_quota(root: Caller) -> None:
    path = f"/api/admin/users/{root.account.id}/quota"
    before = (await root.client.get("/api/me/usage")).json()["data"]

    response = await root.client.put(
        path, json={"max_videos": 1, "period_days": 7, "monthly_budget": None, "max_video": 5}
    )

    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["field"]) == ("unknown_parameter", "max_video")
    assert (await root.client.get("/api/me/usage")).json()["data"] == before


async def test_an_unknown_sign_in_field_is_refused(client: httpx.AsyncClient, root: Caller) -> None:
    response = await client.post(
        "/api/auth/token",
        json={"email": "root@example.org", "password": PASSWORD, "remember": True},
    )

    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["field"]) == ("unknown_parameter", "remember")
