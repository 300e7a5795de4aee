"""The API reads and writes the studio added: lineage, own password, the admin's views."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from reelforge.db.models import Video, WebhookDelivery
from reelforge.domain.accounts import Role
from tests.api.test_videos_api import ASSETS, completed, create
from tests.support.accounts import PASSWORD
from tests.support.api import Caller, MakeCaller, archive, runtime_of

pytestmark = pytest.mark.anyio


async def remix(app: FastAPI, caller: Caller, parent: str, prompt: str) -> dict[str, Any]:
    response = await caller.client.post(f"/api/videos/{parent}/remix", json={"prompt": prompt})
    assert response.status_code == 201, response.text
    video: dict[str, Any] = response.json()["data"]
    await archive(runtime_of(app), video["id"], ASSETS)
    return video


def _ids(node: dict[str, Any]) -> list[Any]:
    return [node["video"]["id"], [_ids(child) for child in node["children"]]]


async def test_lineage_is_the_tree_from_the_oldest_parent_and_only_the_owners(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    ada = await make_caller("ada@example.org")
    bob = await make_caller("bob@example.org")
    root = await completed(app, ada)
    first = await remix(app, ada, root["id"], "at night")
    second = await remix(app, ada, root["id"], "in snow")
    grandchild = await remix(app, ada, first["id"], "at night, in rain")

    answer = await ada.client.get(f"/api/videos/{grandchild['id']}/lineage")
    theirs = await bob.client.get(f"/api/videos/{first['id']}/lineage")

    assert answer.status_code == 200
    lineage = answer.json()["data"]
    assert lineage["focus_id"] == grandchild["id"]
    assert lineage["truncated"] is False
    assert _ids(lineage["root"]) == [
        root["id"],
        [[first["id"], [[grandchild["id"], []]]], [second["id"], []]],
    ]
    assert theirs.status_code == 404


async def test_a_deleted_remix_leaves_the_lineage(app: FastAPI, make_caller: MakeCaller) -> None:
    ada = await make_caller("ada@example.org")
    root = await completed(app, ada)
    child = await remix(app, ada, root["id"], "at night")

    await ada.client.delete(f"/api/videos/{child['id']}")
    lineage = (await ada.client.get(f"/api/videos/{root['id']}/lineage")).json()["data"]

    assert lineage["root"]["children"] == []


async def test_changing_your_password_needs_the_current_one(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    ada = await make_caller("ada@example.org")
    accounts = runtime_of(app).accounts

    wrong = await ada.client.post(
        "/api/me/password", json={"current_password": "nope", "new_password": "a-new-password"}
    )
    short = await ada.client.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    still = await accounts.authenticate("ada@example.org", PASSWORD)
    right = await ada.client.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "a-new-password"}
    )

    assert (wrong.status_code, wrong.json()["field"]) == (400, "current_password")
    assert (short.status_code, short.json()["field"]) == (400, "new_password")
    assert still is not None
    assert right.status_code == 200
    assert await accounts.authenticate("ada@example.org", PASSWORD) is None
    assert await accounts.authenticate("ada@example.org", "a-new-password") is not None


async def test_admin_activity_counts_videos_by_outcome_and_spend_per_day(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    admin = await make_caller("root@example.org", Role.ADMIN)
    ada = await make_caller("ada@example.org")
    await completed(app, ada)  # sora-2, 720p, 4 s: $0.40 reserved
    queued = await create(ada, seconds="8")
    await ada.client.post(f"/api/videos/{queued['id']}/cancel")  # refunded: never submitted

    answer = await admin.client.get("/api/admin/activity", params={"days": 7})
    refused = await ada.client.get("/api/admin/activity")
    bad = await admin.client.get("/api/admin/activity", params={"days": 0})

    days = answer.json()["data"]
    assert len(days) == 7
    today = days[-1]
    assert (today["created"], today["completed"], today["cancelled"]) == (2, 1, 1)
    # The refund cancels the second reservation: the day's net spend is the first video's.
    assert today["spend"] == "0.40"
    assert all(day["created"] == 0 for day in days[:-1])
    assert refused.status_code == 403
    assert bad.status_code == 422


async def test_admin_adds_disables_and_inspects(app: FastAPI, make_caller: MakeCaller) -> None:
    admin = await make_caller("root@example.org", Role.ADMIN)
    ada = await make_caller("ada@example.org")
    video = await create(ada)

    added = await admin.client.post(
        "/api/admin/users", json={"email": "cy@example.org", "password": "cy-password-1"}
    )
    duplicate = await admin.client.post(
        "/api/admin/users", json={"email": "cy@example.org", "password": "cy-password-1"}
    )
    weak = await admin.client.post(
        "/api/admin/users", json={"email": "dee@example.org", "password": "short"}
    )
    disabled = await admin.client.patch(
        f"/api/admin/users/{ada.account.id}", json={"disabled": True}
    )
    locked_out = await ada.client.get("/api/me")
    themself = await admin.client.patch(
        f"/api/admin/users/{admin.account.id}", json={"disabled": True}
    )
    job = await admin.client.get(f"/api/admin/jobs/{video['id']}")

    assert added.status_code == 201
    assert added.json()["data"]["role"] == "user"
    assert duplicate.status_code == 409
    assert (weak.status_code, weak.json()["field"]) == (400, "password")
    assert disabled.json()["data"]["disabled"] is True
    assert locked_out.status_code == 401
    assert (themself.status_code, themself.json()["field"]) == (409, "disabled")
    inspected = job.json()["data"]
    assert inspected["owner_email"] == "ada@example.org"
    assert [event["kind"] for event in inspected["events"]] == ["created"]


async def test_admin_sees_failed_videos_and_replays_any_delivery(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    admin = await make_caller("root@example.org", Role.ADMIN)
    ada = await make_caller("ada@example.org")
    endpoint = await ada.client.post(
        "/api/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook"}
    )
    assert endpoint.status_code == 201, endpoint.text
    video = await create(ada)
    runtime = runtime_of(app)
    async with runtime.database.session() as session, session.begin():
        await session.execute(
            update(Video)
            .where(Video.id == video["id"])
            .values(job_state="failed", error_code="moderation_blocked", error_message="No.")
        )
        await session.execute(update(WebhookDelivery).values(status="failed", attempts=3))

    failed = (await admin.client.get("/api/admin/videos/failed")).json()["data"]
    deliveries = (await admin.client.get("/api/admin/deliveries")).json()["data"]
    replayed = await admin.client.post(f"/api/admin/deliveries/{deliveries[0]['id']}/replay")
    missing = await admin.client.post("/api/admin/deliveries/nope/replay")
    not_admin = await ada.client.get("/api/admin/deliveries")

    assert [(f["video"]["id"], f["video"]["error"]["code"]) for f in failed] == [
        (video["id"], "moderation_blocked")
    ]
    assert deliveries[0]["owner_email"] == "ada@example.org"
    assert (replayed.json()["data"]["status"], replayed.json()["data"]["attempts"]) == (
        "pending",
        3,
    )
    assert missing.status_code == 404
    assert not_admin.status_code == 403
