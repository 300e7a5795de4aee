"""Users' webhook endpoints over HTTP: registration, ownership, events, delivery and replay."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select
from standardwebhooks import Webhook

from reelforge.api.app import create_app
from reelforge.db.models import WebhookEndpoint
from reelforge.domain.clock import utcnow
from reelforge.services.webhook_endpoints import Webhooks
from tests.support.api import Caller, MakeCaller, callers, runtime_of
from tests.support.webhooks import Receiver, receiving

pytestmark = pytest.mark.anyio

ENDPOINTS = "/api/webhooks/endpoints"
DELIVERIES = "/api/webhooks/deliveries"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as hook:
        yield hook


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


@pytest.fixture
async def bob(make_caller: MakeCaller) -> Caller:
    return await make_caller("bob@example.org")


@pytest.fixture
async def guarded_app(make_settings: Any) -> AsyncIterator[FastAPI]:
    """The app as deployed by default: private webhook addresses refused."""
    application = create_app(
        make_settings(embedded_worker=False, webhook_allow_private_addresses=False)
    )
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def guarded_ada(guarded_app: FastAPI) -> AsyncIterator[Caller]:
    async with AsyncExitStack() as stack:
        make = await callers(guarded_app, stack)
        yield await make("ada@example.org")


async def _endpoint(caller: Caller, url: str, **fields: Any) -> dict[str, Any]:
    response = await caller.client.post(ENDPOINTS, json={"url": url, **fields})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()["data"]
    return endpoint


async def _video(caller: Caller) -> str:
    response = await caller.client.post("/api/videos", json={"prompt": "a kite over dunes"})
    assert response.status_code == 201, response.text
    video_id: str = response.json()["data"]["id"]
    return video_id


async def _deliveries(caller: Caller, **query: Any) -> list[dict[str, Any]]:
    response = await caller.client.get(DELIVERIES, params=query)
    assert response.status_code == 200, response.text
    deliveries: list[dict[str, Any]] = response.json()["data"]
    return deliveries


async def test_endpoints_are_created_listed_and_deleted_by_their_owner_only(
    ada: Caller, bob: Caller
) -> None:
    created = await _endpoint(ada, "https://hooks.example.org/reelforge", description="ci")
    assert created["secret"].startswith("whsec_")
    Webhook(created["secret"])  # a secret the library accepts
    assert created["event_types"] == [
        "video.created",
        "video.progress",
        "video.completed",
        "video.failed",
        "video.cancelled",
    ]
    assert created["enabled"] is True

    listed = (await ada.client.get(ENDPOINTS)).json()["data"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert (await bob.client.get(ENDPOINTS)).json()["data"] == []

    stolen = await bob.client.delete(f"{ENDPOINTS}/{created['id']}")
    assert stolen.status_code == 404
    assert stolen.json()["success"] is False

    deleted = await ada.client.delete(f"{ENDPOINTS}/{created['id']}")
    assert deleted.status_code == 200
    assert (await ada.client.get(ENDPOINTS)).json()["data"] == []
    assert (await ada.client.delete(f"{ENDPOINTS}/{created['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"url": "ftp://example.org/hook"}, "url", "http"),
        ({"url": "example.org/hook"}, "url", "http"),
        ({"url": "https://"}, "url", "host"),
        ({"url": "https://example.org:99999/"}, "url", "URL"),
        ({"url": "https://example.org/" + "a" * 2048}, "url", "2048"),
        ({"url": "https://example.org/a b"}, "url", "spaces"),
        ({"url": "https://ex.org/", "event_types": ["video.exploded"]}, "event_types", "video."),
        ({"url": "https://ex.org/", "event_types": []}, "event_types", "video.completed"),
        ({"url": "https://ex.org/", "description": "d" * 201}, "description", "200"),
    ],
)
async def test_bad_endpoints_name_the_field_and_what_is_allowed(
    ada: Caller, body: dict[str, Any], field: str, says: str
) -> None:
    response = await ada.client.post(ENDPOINTS, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert says in error["message"]
    assert (await ada.client.get(ENDPOINTS)).json()["data"] == []


async def test_a_missing_url_is_422(ada: Caller) -> None:
    response = await ada.client.post(ENDPOINTS, json={"description": "no url"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "url"


async def test_events_go_only_to_the_owners_subscribed_endpoints(ada: Caller, bob: Caller) -> None:
    lifecycle = await _endpoint(
        ada, "https://a.example.org/", event_types=["video.cancelled", "video.created"]
    )
    finished = await _endpoint(ada, "https://b.example.org/", event_types=["video.completed"])
    await _endpoint(bob, "https://c.example.org/")

    video_id = await _video(ada)
    cancelled = await ada.client.post(f"/api/videos/{video_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text

    deliveries = await _deliveries(ada)
    assert [d["event_type"] for d in deliveries] == ["video.cancelled", "video.created"]
    assert {d["endpoint_id"] for d in deliveries} == {lifecycle["id"]}
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in deliveries)
    payload = deliveries[0]["payload"]
    assert list(payload) == ["object", "id", "type", "created_at", "data"]
    assert payload["object"] == "event"
    assert payload["id"].startswith("evt_")
    assert payload["data"] == {
        "id": video_id,
        "object": "video",
        "status": "cancelled",
        "progress": 0,
    }
    assert await _deliveries(ada, endpoint_id=finished["id"]) == []
    assert await _deliveries(bob) == []


async def test_a_delivery_arrives_signed_and_is_recorded(
    app: FastAPI, ada: Caller, receiver: Receiver
) -> None:
    endpoint = await _endpoint(ada, receiver.url, event_types=["video.created"])
    video_id = await _video(ada)

    assert await runtime_of(app).deliverer.deliver_due() == 1

    [(headers, body)] = receiver.received
    event = Webhook(endpoint["secret"]).verify(body, headers)
    assert event["type"] == "video.created"
    assert event["data"]["id"] == video_id
    assert headers["content-type"] == "application/json"
    [delivery] = await _deliveries(ada)
    assert headers["webhook-id"] == delivery["id"]
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 204
    assert delivery["delivered_at"] is not None
    assert await runtime_of(app).deliverer.deliver_due() == 0


async def test_a_failing_receiver_gets_retries_with_backoff(
    app: FastAPI, ada: Caller, receiver: Receiver
) -> None:
    deliverer = runtime_of(app).deliverer
    receiver.statuses = [500]
    await _endpoint(ada, receiver.url, event_types=["video.created"])
    await _video(ada)
    now = utcnow()

    assert await deliverer.deliver_due(now) == 1
    [delivery] = await _deliveries(ada)
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 500
    assert delivery["last_error"] == "HTTP 500"
    retry_at = _time(delivery["next_attempt_at"]) - now
    assert timedelta(seconds=7.5) <= retry_at <= timedelta(seconds=12.5)

    assert await deliverer.deliver_due(now + timedelta(seconds=5)) == 0
    assert await deliverer.deliver_due(now + timedelta(seconds=13)) == 1
    [delivery] = await _deliveries(ada, status="delivered")
    assert delivery["attempts"] == 2
    assert delivery["last_error"] is None
    ids = receiver.webhook_ids()
    assert len(ids) == 2
    assert len(set(ids)) == 1  # the same webhook-id on every attempt, so receivers can dedupe


async def test_a_redirect_is_a_failure_and_is_not_followed(
    app: FastAPI, ada: Caller, receiver: Receiver
) -> None:
    receiver.statuses = [307]
    await _endpoint(ada, receiver.url, event_types=["video.created"])
    await _video(ada)

    assert await runtime_of(app).deliverer.deliver_due() == 1

    assert len(receiver.received) == 1
    [delivery] = await _deliveries(ada)
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 307
    assert "redirect" in delivery["last_error"]


async def test_an_unreachable_receiver_records_the_error(app: FastAPI, ada: Caller) -> None:
    with receiving() as gone:
        url = gone.url
    await _endpoint(ada, url, event_types=["video.created"])
    await _video(ada)

    assert await runtime_of(app).deliverer.deliver_due() == 1

    [delivery] = await _deliveries(ada)
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] is None
    assert "ConnectError" in delivery["last_error"]


async def test_replay_requeues_a_delivery_now_and_keeps_its_attempts(
    app: FastAPI, ada: Caller, bob: Caller, receiver: Receiver
) -> None:
    deliverer = runtime_of(app).deliverer
    await _endpoint(ada, receiver.url, event_types=["video.created"])
    await _video(ada)
    await deliverer.deliver_due()
    [delivery] = await _deliveries(ada, status="delivered")

    assert (await bob.client.post(f"{DELIVERIES}/{delivery['id']}/replay")).status_code == 404
    replayed = await ada.client.post(f"{DELIVERIES}/{delivery['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["data"]["status"] == "pending"
    assert replayed.json()["data"]["attempts"] == 1

    assert await deliverer.deliver_due() == 1
    [again] = await _deliveries(ada)
    assert again["status"] == "delivered"
    assert again["attempts"] == 2
    first, second = receiver.received
    assert json.loads(first[1]) == json.loads(second[1])
    assert first[0]["webhook-id"] == second[0]["webhook-id"]


async def test_delivery_list_filters_and_limits(ada: Caller) -> None:
    first = await _endpoint(ada, "https://a.example.org/", event_types=["video.created"])
    await _endpoint(ada, "https://b.example.org/", event_types=["video.created"])
    for _ in range(3):
        await _video(ada)

    assert len(await _deliveries(ada)) == 6
    assert len(await _deliveries(ada, limit=2)) == 2
    only = await _deliveries(ada, endpoint_id=first["id"])
    assert len(only) == 3
    assert {d["endpoint_id"] for d in only} == {first["id"]}
    times = [d["created_at"] for d in await _deliveries(ada)]
    assert times == sorted(times, reverse=True)
    assert await _deliveries(ada, status="failed") == []
    bad = await ada.client.get(DELIVERIES, params={"status": "lost"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "status"
    assert "pending" in bad.json()["error"]["message"]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- private addresses -----------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1:5432/",  # loopback
    "http://[::1]/hook",
    "http://10.0.0.5/",  # private
    "http://192.168.1.20:8080/hook",
    "http://[fd12:3456::1]/",
    "http://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
    "http://[fe80::1]/",
    "http://224.0.0.251/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://0.0.0.0:8000/",  # unspecified
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://localhost:8000/hook",
    "https://admin.localhost/",
]


async def _stored_endpoints(app: FastAPI) -> int:
    async with runtime_of(app).database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0)


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_endpoints_on_private_addresses_are_refused(
    guarded_app: FastAPI, guarded_ada: Caller, url: str
) -> None:
    response = await guarded_ada.client.post(ENDPOINTS, json={"url": url})

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["field"] == "url"
    assert "must be a public http(s) address" in body["error"]["message"]
    assert "REELFORGE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in body["error"]["message"]
    assert (await guarded_ada.client.get(ENDPOINTS)).json()["data"] == []
    assert await _stored_endpoints(guarded_app) == 0


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.org/in", "http://8.8.8.8:8080/", "https://[2606:4700::1111]/"],
)
async def test_public_addresses_and_names_are_registered(guarded_ada: Caller, url: str) -> None:
    created = await _endpoint(guarded_ada, url)
    assert created["url"] == url


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_addresses_are_registered_when_the_setting_allows(
    app: FastAPI, ada: Caller, url: str
) -> None:
    assert runtime_of(app).settings.webhook_allow_private_addresses
    created = await _endpoint(ada, url)
    assert created["url"] == url


async def test_a_delivery_to_a_name_that_resolves_privately_fails_unsent(
    guarded_app: FastAPI, guarded_ada: Caller, receiver: Receiver
) -> None:
    # An endpoint registered while private addresses were allowed (registration refuses
    # `localhost` now); `localhost` resolves to 127.0.0.1, where the receiver listens.
    url = receiver.url.replace("127.0.0.1", "localhost")
    runtime = runtime_of(guarded_app)
    await Webhooks(runtime.database, allow_private_addresses=True).create_endpoint(
        guarded_ada.account, url, event_types=["video.created"]
    )
    await _video(guarded_ada)

    assert await runtime.deliverer.deliver_due() == 1
    assert await runtime.deliverer.deliver_due(utcnow() + timedelta(days=1)) == 0

    assert receiver.received == []
    [delivery] = await _deliveries(guarded_ada)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1
    assert delivery["next_attempt_at"] is None
    assert delivery["last_status_code"] is None
    assert "localhost resolves to 127.0.0.1" in delivery["last_error"]
    assert "REELFORGE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in delivery["last_error"]
