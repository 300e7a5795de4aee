"""The app with fal and Veo configured beside the emulator: /ready checks every provider, the
catalog's 400s name the field, POST /api/videos/{id}/rerun runs a prompt on another model, and
POST /webhooks/fal takes only deliveries signed with fal's published keys (a fake JWKS on
loopback)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import func, select, update

from reelforge.api.app import create_app
from reelforge.db.models import Video, WebhookReceipt
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.emulator.server import running
from reelforge.services.fal_webhooks import LEEWAY_SECONDS
from reelforge.services.jobs import Jobs
from reelforge.settings import Settings
from reelforge.web.live import Live, Update
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.steps import Steps
from tests.providers.fakes import fal as fal_fake
from tests.providers.fakes import veo as veo_fake
from tests.support.api import BASE_URL, Caller, MakeCaller, callers, runtime_of
from tests.support.engine import event_kinds

pytestmark = pytest.mark.anyio


KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
HOOK = "/webhooks/fal"


@pytest.fixture
def fal() -> fal_fake.FalFake:
    return fal_fake.FalFake()


@pytest.fixture
def vendor_roots(fal: fal_fake.FalFake) -> Iterator[tuple[str, str]]:
    veo = veo_fake.VeoFake()
    with running(fal.app()) as fal_server, running(veo.app()) as veo_server:
        fal.root = fal_server.root
        yield fal_server.root, veo_server.root


@pytest.fixture
def settings(make_settings: Any, vendor_roots: tuple[str, str]) -> Settings:
    fal_root, veo_root = vendor_roots
    settings: Settings = make_settings(
        embedded_worker=False,
        providers="fal,veo",
        fal_api_key=fal_fake.API_KEY,
        fal_base_url=fal_root,
        fal_jwks_url=f"{fal_root}/.well-known/jwks.json",
        gemini_api_key=veo_fake.API_KEY,
        gemini_base_url=veo_root,
    )
    return settings


@pytest.fixture
async def app_on_each_database(settings: Settings, migrated_url: str) -> AsyncIterator[FastAPI]:
    """The app of `settings` on SQLite and on PostgreSQL."""
    application = create_app(settings.model_copy(update={"database_url": migrated_url}))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def fal_video(app: FastAPI, make_caller: MakeCaller) -> tuple[str, str]:
    """A fal video whose request is running in fal's queue, next checked an hour from now:
    (our video id, fal's request id)."""
    caller = await make_caller("ada@example.org")
    response = await caller.client.post(
        "/api/videos", json={"prompt": "a kite", "model": KLING, "seconds": "5"}
    )
    assert response.status_code == 201, response.text
    video_id: str = response.json()["data"]["id"]
    request_id = str(uuid.uuid4())
    async with runtime_of(app).database.session() as session, session.begin():
        await session.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(
                provider_video_id=f"fal-ai/kling-video|{request_id}|1280x720|5",
                job_state="in_progress",
                next_check_at=utcnow() + timedelta(hours=1),
            )
        )
    return video_id, request_id


async def _video(app: FastAPI, video_id: str) -> Video:
    async with runtime_of(app).database.session() as session:
        video = await session.get(Video, video_id)
        assert video is not None
        return video


async def _receipts(app: FastAPI) -> int:
    async with runtime_of(app).database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookReceipt)) or 0)


async def test_ready_checks_every_provider(make_caller: MakeCaller, app: FastAPI) -> None:
    caller = await make_caller("ada@example.org")
    response = await caller.client.get("/ready")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert {"provider", "provider:fal", "provider:veo"} <= set(checks)
    assert all(check["ok"] for check in checks.values())


async def test_rerun_on_another_model(make_caller: MakeCaller) -> None:
    caller = await make_caller("ada@example.org")
    first = await caller.client.post(
        "/api/videos", json={"prompt": "a harbour", "model": "veo-3.1", "seconds": "8"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["data"]["provider"] == "veo"
    video_id = first.json()["data"]["id"]

    again = await caller.client.post(
        f"/api/videos/{video_id}/rerun", json={"model": "fal-ai/veo3.1"}
    )

    assert again.status_code == 201, again.text
    data = again.json()["data"]
    assert (data["provider"], data["model"], data["prompt"]) == (
        "fal",
        "fal-ai/veo3.1",
        "a harbour",
    )
    assert data["seconds"] == "8"


async def test_rerun_on_a_model_that_cannot_names_the_field(make_caller: MakeCaller) -> None:
    caller = await make_caller("ada@example.org")
    first = await caller.client.post(
        "/api/videos", json={"prompt": "a harbour", "model": "veo-3.1", "seconds": "4"}
    )
    video_id = first.json()["data"]["id"]
    response = await caller.client.post(
        f"/api/videos/{video_id}/rerun",
        json={"model": "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"},
    )
    assert response.status_code == 400, response.text
    assert "seconds" in response.text
    missing = await caller.client.post(f"/api/videos/{video_id}/rerun", json={})
    assert missing.status_code in (400, 422)
    unknown = await caller.client.post("/api/videos/video_nope/rerun", json={"model": "veo-3.1"})
    assert unknown.status_code == 404


async def test_a_signed_fal_webhook_makes_the_video_due_now_once(
    app: FastAPI, client: httpx.AsyncClient, fal: fal_fake.FalFake, fal_video: tuple[str, str]
) -> None:
    video_id, request_id = fal_video
    before = await _video(app, video_id)
    body, headers = fal.webhook(request_id)

    first = await client.post(HOOK, content=body, headers=headers)
    again = await client.post(HOOK, content=body, headers=headers)  # fal redelivers

    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"received": True, "duplicate": False}
    assert again.json()["data"] == {"received": True, "duplicate": True}
    after = await _video(app, video_id)
    assert after.next_check_at is not None
    assert after.next_check_at.replace(tzinfo=None) <= utcnow().replace(tzinfo=None)
    # A hint only: the engine asks fal's queue; the state is untouched until it does.
    assert (after.job_state, after.lease_version) == (before.job_state, before.lease_version)
    assert (await event_kinds(app.state.runtime.database, video_id)).count("webhook_received") == 1
    assert await _receipts(app) == 1


@pytest.mark.parametrize(
    ("tamper", "field"),
    [
        ("forged", "x-fal-webhook-signature"),
        ("body", "x-fal-webhook-signature"),
        ("expired", "x-fal-webhook-timestamp"),
        ("future", "x-fal-webhook-timestamp"),
        ("not-hex", "x-fal-webhook-signature"),
        ("no-user", "x-fal-webhook-user-id"),
        ("bad-request-id", "x-fal-webhook-request-id"),
        ("other-request", "request_id"),
    ],
)
async def test_a_bad_fal_webhook_is_a_400_naming_what_is_wrong(
    app: FastAPI,
    client: httpx.AsyncClient,
    fal: fal_fake.FalFake,
    fal_video: tuple[str, str],
    tamper: str,
    field: str,
) -> None:
    video_id, request_id = fal_video
    now = int(time.time())
    if tamper == "forged":
        body, headers = fal.webhook(request_id, key=Ed25519PrivateKey.generate())
    elif tamper == "body":
        body, headers = fal.webhook(request_id, body=b'{"request_id": "x", "status": "OK"}')
    elif tamper in ("expired", "future"):
        # A minute past the leeway: a second past it would pass or not by when in its second
        # `now` was taken and how long the request took.
        outside = LEEWAY_SECONDS + 60
        body, headers = fal.webhook(
            request_id, timestamp=now + (-outside if tamper == "expired" else outside)
        )
    else:
        body, headers = fal.webhook(request_id)
        if tamper == "not-hex":
            headers["x-fal-webhook-signature"] = "zz" * 64
        elif tamper == "no-user":
            del headers["x-fal-webhook-user-id"]
        elif tamper == "bad-request-id":
            headers["x-fal-webhook-request-id"] = "%|_"
        elif tamper == "other-request":
            # Correctly signed, but its body names another request than the header.
            body = body.replace(request_id.encode(), str(uuid.uuid4()).encode())
            headers = _signed_for(fal, request_id, body)

    response = await client.post(HOOK, content=body, headers=headers)

    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert await _receipts(app) == 0
    after = await _video(app, video_id)
    assert after.next_check_at is not None
    assert after.next_check_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)


def _signed_for(fal: fal_fake.FalFake, request_id: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hashlib.sha256(body).hexdigest()
    message = "\n".join((request_id, "fal-user-1", stamp, digest)).encode()
    return {
        "content-type": "application/json",
        "x-fal-webhook-request-id": request_id,
        "x-fal-webhook-user-id": "fal-user-1",
        "x-fal-webhook-timestamp": stamp,
        "x-fal-webhook-signature": fal.signing_key.sign(message).hex(),
    }


async def test_fal_webhook_keys_are_fetched_once_and_refetched_after_a_rotation(
    app: FastAPI, client: httpx.AsyncClient, fal: fal_fake.FalFake, fal_video: tuple[str, str]
) -> None:
    _, request_id = fal_video
    body, headers = fal.webhook(request_id)
    assert (await client.post(HOOK, content=body, headers=headers)).status_code == 200
    other = str(uuid.uuid4())
    body, headers = fal.webhook(other)
    assert (await client.post(HOOK, content=body, headers=headers)).status_code == 200
    assert fal.jwks_fetches == 1  # cached

    fal.signing_key = Ed25519PrivateKey.generate()  # fal rotates its key
    body, headers = fal.webhook(str(uuid.uuid4()))
    response = await client.post(HOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert fal.jwks_fetches == 2


async def test_fal_keys_out_of_reach_is_a_503_fal_retries(
    client: httpx.AsyncClient, fal: fal_fake.FalFake, fal_video: tuple[str, str]
) -> None:
    fal.jwks_down = True
    body, headers = fal.webhook(fal_video[1])
    response = await client.post(HOOK, content=body, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "30"
    assert response.json()["code"] == "webhook_keys_unavailable"


async def test_a_webhook_for_a_request_we_do_not_have_is_acknowledged_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, fal: fal_fake.FalFake
) -> None:
    body, headers = fal.webhook(str(uuid.uuid4()), status="ERROR")
    response = await client.post(HOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert await _receipts(app) == 1


async def test_ready_names_the_vendor_whose_key_is_refused(
    make_settings: Any, vendor_roots: tuple[str, str]
) -> None:
    fal_root, veo_root = vendor_roots
    settings = make_settings(
        embedded_worker=False,
        providers="fal,veo",
        fal_api_key="not-the-key",
        fal_base_url=fal_root,
        gemini_api_key=veo_fake.API_KEY,
        gemini_base_url=veo_root,
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.get("/ready")
    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert not checks["provider:fal"]["ok"]
    assert checks["provider:veo"]["ok"]
    assert checks["provider"]["ok"]


async def test_fal_webhooks_are_not_received_without_the_fal_provider(
    make_settings: Any,
) -> None:
    application = create_app(make_settings(embedded_worker=False))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(HOOK, content=b"{}")
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "webhooks_not_configured"


class _Watching:
    """A live-update connection's end, as the SSE and socket.io transports hold one."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    async def send(self, update: Update) -> None:
        self.updates.append(update.payload)

    async def close(self) -> None:
        pass


async def test_what_fal_says_about_a_job_reaches_api_and_live_updates(
    app_on_each_database: FastAPI, fal: fal_fake.FalFake
) -> None:
    """Queued: its place in fal's queue; running: fal's last log line; completed: neither."""
    app = app_on_each_database
    async with AsyncExitStack() as stack:
        caller = await (await callers(app, stack))("ada@example.org")
        await _follow_fal_job(app, caller, fal)


async def _follow_fal_job(app: FastAPI, caller: Caller, fal: fal_fake.FalFake) -> None:
    runtime = runtime_of(app)
    fal.steps_next = ["IN_QUEUE", "IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
    created = await caller.client.post(
        "/api/videos", json={"prompt": "a kite", "model": KLING, "seconds": "5"}
    )
    assert created.status_code == 201, created.text
    video_id = created.json()["data"]["id"]
    assert created.json()["data"]["queue_position"] is None
    seen = _Watching()
    live: Live = app.state.live

    async def account() -> Account:
        return caller.account

    watcher = await live.connect(caller.account, account, seen.send, seen.close)
    assert await live.follow(watcher, video_id)
    steps = Steps(
        runtime.lifecycle,
        Jobs(runtime.database),
        runtime.storage,
        runtime.providers,
        deadline=timedelta(minutes=5),
    )
    config = EngineConfig(concurrency=1, lease=timedelta(seconds=30), idle_seconds=0.05)
    engine = Engine(Jobs(runtime.database), steps, config=config, provider_name="fal")

    async def step() -> dict[str, Any]:
        async with runtime.database.session() as session, session.begin():
            await session.execute(
                update(Video).where(Video.id == video_id).values(next_check_at=utcnow())
            )
        assert await engine.run_once() == 1
        response = await caller.client.get(f"/api/videos/{video_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        with anyio.fail_after(30):  # a guard against a hang, not a timing assertion
            while not any(
                u.get("status") == data["status"] and _same(u, data) for u in seen.updates
            ):
                await anyio.sleep(0.01)
        return data

    submitted = await step()
    assert submitted["status"] == "queued"
    queued = await step()  # the first status call: two ahead of it
    assert (queued["status"], queued["queue_position"], queued["vendor_message"]) == (
        "queued",
        2,
        None,
    )
    nearer = await step()
    assert nearer["queue_position"] == 1
    running = await step()
    assert (running["status"], running["queue_position"]) == ("in_progress", None)
    assert running["vendor_message"] == "step 1: denoising"
    later = await step()
    assert later["vendor_message"] == "step 2: denoising"
    done = await step()
    assert done["status"] == "completed"
    assert (done["queue_position"], done["vendor_message"]) == (None, None)
    assert {(u["queue_position"], u["vendor_message"]) for u in seen.updates} >= {
        (2, None),
        (1, None),
        (None, "step 1: denoising"),
        (None, "step 2: denoising"),
    }
    # The OpenAI protocol has no such fields: /v1 does not grow them.
    protocol = await caller.client.get(f"/v1/videos/{video_id}")
    assert protocol.status_code == 200, protocol.text
    assert not {"queue_position", "vendor_message"} & set(protocol.json())


def _same(update: dict[str, Any], data: dict[str, Any]) -> bool:
    """A live update says what /api says (`data`) about the job's state and its vendor."""
    fields = ("status", "queue_position", "vendor_message")
    return all(update.get(name) == data[name] for name in fields)
