"""Incoming provider webhooks: signed events nudge the job and nothing else; bad input is a 400."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from reelforge.api.app import create_app
from reelforge.bus import Notice, Topic
from reelforge.db.models import Video, WebhookReceipt
from reelforge.domain.clock import utcnow
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.webhooks import WebhookSender, event_body
from reelforge.runtime import Runtime
from reelforge.settings import Settings
from tests.support.api import BASE_URL, MakeCaller, runtime_of
from tests.support.engine import event_kinds
from tests.support.webhooks import OTHER_SECRET, SECRET, signed

pytestmark = pytest.mark.anyio

UPSTREAM_ID = "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5"
HOOK = "/webhooks/emulator"
LATER = timedelta(hours=1)
# Columns a webhook must never touch (the provider's retrieve is the truth).
UNTOUCHED = (
    "job_state",
    "progress",
    "lease_version",
    "lease_owner",
    "attempts",
    "error_code",
    "completed_at",
    "deleted_at",
)


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    configured: Settings = make_settings(embedded_worker=False, provider_webhook_secret=SECRET)
    return configured


@pytest.fixture
async def hooks(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client, as a provider is."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def nudged(app: FastAPI, running_video: str) -> list[str]:
    """The video ids the engines were woken for (WAKE notices on the bus) once the video was
    running: its own accept's WAKE is not among them."""
    calls: list[str] = []

    def take(notice: Notice) -> None:
        if notice.topic is Topic.WAKE:
            calls.append(notice.id)

    runtime_of(app).bus.observe(take)
    return calls


@pytest.fixture
async def running_video(app: FastAPI, make_caller: MakeCaller) -> str:
    """A video upstream is generating, whose next check is an hour away."""
    caller = await make_caller("ada@example.org")
    response = await caller.client.post("/api/videos", json={"prompt": "a lighthouse at dusk"})
    assert response.status_code == 201, response.text
    video_id: str = response.json()["data"]["id"]
    await _set(
        runtime_of(app),
        video_id,
        provider_video_id=UPSTREAM_ID,
        job_state="in_progress",
        progress=40,
        next_check_at=utcnow() + LATER,
    )
    return video_id


async def _set(runtime: Runtime, video_id: str, **values: Any) -> None:
    async with runtime.database.session() as session, session.begin():
        await session.execute(update(Video).where(Video.id == video_id).values(**values))


async def _video(runtime: Runtime, video_id: str) -> Video:
    async with runtime.database.session() as session:
        video = await session.get(Video, video_id)
        assert video is not None
        return video


async def _receipts(runtime: Runtime) -> int:
    async with runtime.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookReceipt)) or 0)


def _emulator_signed(event_type: str = "video.completed") -> tuple[bytes, dict[str, str]]:
    """A delivery exactly as the emulator's sender builds and signs it."""
    sender = WebhookSender(
        EmulatorSettings(  # type: ignore[call-arg]
            _env_file=None, webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRET
        )
    )
    delivery = sender.prepare(event_type, UPSTREAM_ID, int(utcnow().timestamp()), drop=False)
    return delivery.body.encode(), sender.headers(delivery)


def _body(event_type: str = "video.completed", video_id: str = UPSTREAM_ID) -> str:
    return event_body("evt_0123456789abcdef0123456789abcdef", event_type, 1758941485, video_id)


def _snapshot(video: Video) -> dict[str, Any]:
    return {name: getattr(video, name) for name in UNTOUCHED}


async def test_an_emulator_webhook_nudges_the_video_and_changes_nothing_else(
    app: FastAPI, hooks: httpx.AsyncClient, running_video: str, nudged: list[str]
) -> None:
    runtime = runtime_of(app)
    before = await _video(runtime, running_video)
    body, headers = _emulator_signed("video.completed")

    response = await hooks.post(HOOK, content=body, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"received": True, "duplicate": False}}
    after = await _video(runtime, running_video)
    assert after.next_check_at is not None
    assert after.next_check_at <= utcnow()
    assert _snapshot(after) == _snapshot(before)
    assert (await event_kinds(runtime.database, running_video))[-1] == "webhook_received"
    assert nudged == [running_video]
    async with runtime.database.session() as session:
        receipt = (await session.scalars(select(WebhookReceipt))).one()
    assert (receipt.provider, receipt.webhook_id) == ("emulator", headers["webhook-id"])
    assert (receipt.event_type, receipt.provider_video_id) == ("video.completed", UPSTREAM_ID)


async def test_any_video_event_nudges(
    app: FastAPI, hooks: httpx.AsyncClient, running_video: str, nudged: list[str]
) -> None:
    body = _body("video.failed")
    response = await hooks.post(HOOK, content=body, headers=signed(body))
    assert response.status_code == 200
    assert nudged == [running_video]


async def test_a_redelivery_is_acknowledged_once(
    app: FastAPI, hooks: httpx.AsyncClient, running_video: str, nudged: list[str]
) -> None:
    runtime = runtime_of(app)
    body, headers = _emulator_signed()

    first = await hooks.post(HOOK, content=body, headers=headers)
    await _set(runtime, running_video, next_check_at=utcnow() + LATER)
    second = await hooks.post(HOOK, content=body, headers=headers)

    assert first.json()["data"]["duplicate"] is False
    assert second.status_code == 200
    assert second.json()["data"]["duplicate"] is True
    assert (await event_kinds(runtime.database, running_video)).count("webhook_received") == 1
    next_check_at = (await _video(runtime, running_video)).next_check_at
    assert next_check_at is not None
    assert next_check_at > utcnow()
    assert nudged == [running_video]
    assert await _receipts(runtime) == 1


async def test_an_unknown_or_finished_video_is_acknowledged_without_change(
    app: FastAPI, hooks: httpx.AsyncClient, running_video: str, nudged: list[str]
) -> None:
    runtime = runtime_of(app)
    unknown = _body(video_id="video_nobody_knows")
    response = await hooks.post(HOOK, content=unknown, headers=signed(unknown))
    assert response.status_code == 200
    assert response.json()["data"]["duplicate"] is False

    await _set(runtime, running_video, job_state="completed")
    before = await _video(runtime, running_video)
    finished = _body()
    response = await hooks.post(HOOK, content=finished, headers=signed(finished))
    assert response.status_code == 200

    after = await _video(runtime, running_video)
    assert after.next_check_at == before.next_check_at
    assert "webhook_received" not in await event_kinds(runtime.database, running_video)
    assert nudged == []


async def test_an_event_about_something_else_is_acknowledged(
    app: FastAPI, hooks: httpx.AsyncClient, running_video: str, nudged: list[str]
) -> None:
    body = json.dumps({"object": "event", "id": "evt_1", "type": "batch.completed", "data": {}})
    response = await hooks.post(HOOK, content=body, headers=signed(body))
    assert response.status_code == 200
    assert nudged == []


Rejection = tuple[str | bytes, dict[str, Any] | list[tuple[bytes, bytes]], str]


def _rejections() -> dict[str, Rejection]:
    """Each bad delivery by name: (body, headers, the field the 400 names).

    Built when a test runs, not at collection: signatures are only fresh for five minutes.
    """
    body = _body()
    good = signed(body)
    without = {name: {k: v for k, v in good.items() if k != name} for name in good}
    old = signed(body, at=utcnow() - timedelta(minutes=10))
    ahead = signed(body, at=utcnow() + timedelta(minutes=10))
    not_json = "{this is not json"
    cases: list[tuple[str, str | bytes, dict[str, Any] | list[tuple[bytes, bytes]], str]] = [
        ("forged", body, signed(body, secret=OTHER_SECRET), "webhook-signature"),
        ("replayed", body, old, "webhook-signature"),
        ("from the future", body, ahead, "webhook-signature"),
        ("tampered body", body.replace("completed", "failed"), good, "webhook-signature"),
        ("no id", body, without["webhook-id"], "webhook-id"),
        ("no timestamp", body, without["webhook-timestamp"], "webhook-timestamp"),
        ("no signature", body, without["webhook-signature"], "webhook-signature"),
        ("no headers", body, {}, "webhook-id"),
        ("text timestamp", body, good | {"webhook-timestamp": "yesterday"}, "webhook-timestamp"),
        ("unsplittable signature", body, good | {"webhook-signature": "v1"}, "webhook-signature"),
        ("bad base64", body, good | {"webhook-signature": "v1,!!!"}, "webhook-signature"),
        (
            "non-ASCII header",
            body,
            [(k.encode(), v.encode()) for k, v in good.items() if k != "webhook-id"]
            + [(b"webhook-id", "wh_caf\u00e9".encode())],
            "webhook-id",
        ),
        ("not JSON", not_json, signed(not_json), "body"),
        ("not UTF-8", b"\xff\xfe{}", good, "body"),
        ("a JSON list", "[1, 2]", signed("[1, 2]"), "body"),
        (
            "no video id",
            '{"type": "video.completed"}',
            signed('{"type": "video.completed"}'),
            "data.id",
        ),
    ]
    return {case[0]: case[1:] for case in cases}


@pytest.mark.parametrize("case", list(_rejections()))
async def test_bad_webhooks_are_400_and_change_nothing(
    app: FastAPI,
    hooks: httpx.AsyncClient,
    running_video: str,
    nudged: list[str],
    case: str,
) -> None:
    body, headers, field = _rejections()[case]
    runtime = runtime_of(app)
    before = await _video(runtime, running_video)

    response = await hooks.post(
        HOOK, content=body.encode() if isinstance(body, str) else body, headers=headers
    )

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["success"] is False
    assert error["code"] == "invalid_webhook"
    assert error["field"] == field
    assert await _receipts(runtime) == 0
    assert (await _video(runtime, running_video)).next_check_at == before.next_check_at
    assert "webhook_received" not in await event_kinds(runtime.database, running_video)
    assert nudged == []


async def test_an_unknown_provider_is_400(app: FastAPI, hooks: httpx.AsyncClient) -> None:
    body = _body()
    response = await hooks.post("/webhooks/openai", content=body, headers=signed(body))
    assert response.status_code == 400
    assert response.json()["field"] == "provider"
    assert await _receipts(runtime_of(app)) == 0


async def test_an_oversized_body_is_413(app: FastAPI, hooks: httpx.AsyncClient) -> None:
    body = json.dumps({"type": "video.completed", "pad": "x" * 70_000})
    response = await hooks.post(HOOK, content=body, headers=signed(body))
    assert response.status_code == 413
    assert response.json()["success"] is False


async def test_without_a_secret_the_route_says_webhooks_are_not_configured(
    make_settings: Any,
) -> None:
    application = create_app(make_settings(embedded_worker=False))
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url=BASE_URL
        ) as client,
    ):
        body = _body()
        response = await client.post(HOOK, content=body, headers=signed(body))
    assert response.status_code == 404
    assert response.json()["code"] == "webhooks_not_configured"
    assert "REELFORGE_PROVIDER_WEBHOOK_SECRET" in response.json()["error"]


HEADER_NAMES = st.sampled_from(
    [b"webhook-id", b"webhook-timestamp", b"webhook-signature", b"content-type", b"x-other"]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
FUZZ = hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_handled(response: httpx.Response) -> None:
    assert response.status_code in (200, 400, 413), response.text
    if response.status_code != 200:
        assert response.json()["success"] is False


@FUZZ
@given(
    path=st.sampled_from([HOOK, "/webhooks/openai", "/webhooks/%C3%A9", "/webhooks/x"]),
    body=st.binary(max_size=300),
    headers=st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=40)), max_size=5),
)
async def test_arbitrary_bytes_never_cause_a_5xx(
    hooks: httpx.AsyncClient, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    _assert_handled(await hooks.post(path, content=body, headers=headers))


@FUZZ
@given(
    payload=JSON | st.fixed_dictionaries({"type": st.text(max_size=90), "data": JSON}),
    webhook_id=st.text(min_size=1, max_size=300),
    skew=st.integers(min_value=-900, max_value=900),
)
async def test_correctly_signed_arbitrary_events_never_cause_a_5xx(
    hooks: httpx.AsyncClient, payload: Any, webhook_id: str, skew: int
) -> None:
    # Signed with the real secret, so everything after the signature check gets fuzzed too.
    body = json.dumps(payload)
    headers = signed(body, at=utcnow() + timedelta(seconds=skew), webhook_id=webhook_id)
    raw = [
        (name.encode(), value.encode("utf-8", "surrogatepass")) for name, value in headers.items()
    ]
    _assert_handled(await hooks.post(HOOK, content=body.encode(), headers=raw))
