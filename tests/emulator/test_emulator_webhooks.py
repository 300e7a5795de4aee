"""Outgoing webhooks: signed as OpenAI signs them, accepted by the SDK, retried, droppable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
import openai
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import running
from reelforge.emulator.webhooks import WebhookSender
from tests.emulator.helpers import API_KEY, cached_render, make_settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PROMPT = "a calm ocean at sunset"


@dataclass
class Receiver:
    """A loopback webhook endpoint that records what arrives and can fail on purpose."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    status: int = 500

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        if self.fail_first > 0:
            self.fail_first -= 1
            headers = (
                {"location": "http://127.0.0.1:9/elsewhere"} if self.status in (301, 307) else {}
            )
            return Response(status_code=self.status, headers=headers)
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    app = Starlette(routes=[Route("/hook", hook.endpoint, methods=["POST"])])
    with running(app) as server:
        hook.url = f"{server.root}/hook"
        yield hook


@pytest.fixture
def hooked(receiver: Receiver) -> Iterator[FastAPI]:
    app = create_emulator_app(
        make_settings(webhook_url=receiver.url, webhook_secret=SECRET),
        renderer=cached_render,
    )
    yield app
    app.state.emulator.close()


@pytest.fixture
async def client(hooked: FastAPI) -> Any:
    http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=hooked))
    async with openai.AsyncOpenAI(
        base_url="http://emulator.test/v1", api_key=API_KEY, http_client=http
    ) as sdk:
        yield sdk


async def wait_for(receiver: Receiver, count: int) -> None:
    with anyio.fail_after(10):
        while len(receiver.received) < count:
            await anyio.sleep(0.01)


async def test_completed_event_is_accepted_by_the_sdk(client: Any, receiver: Receiver) -> None:
    video = await client.videos.create_and_poll(prompt=PROMPT)
    await wait_for(receiver, 1)
    headers, body = receiver.received[0]
    event = client.webhooks.unwrap(body.decode(), headers, secret=SECRET)
    assert event.type == "video.completed"
    assert event.data.id == video.id
    assert event.object == "event"
    assert event.id.startswith("evt_")
    assert list(json.loads(body)) == ["object", "id", "type", "created_at", "data"]
    assert json.loads(body)["data"] == {"id": video.id}
    assert headers["webhook-id"].startswith("wh_")
    assert headers["user-agent"] == "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(body.decode(), headers, secret="whsec_" + "A" * 44)


async def test_failed_event(client: Any, receiver: Receiver) -> None:
    video = await client.videos.create_and_poll(prompt=f"{PROMPT} [[fail]]")
    assert video.status == "failed"
    await wait_for(receiver, 1)
    headers, body = receiver.received[0]
    event = client.webhooks.unwrap(body, headers, secret=SECRET)
    assert event.type == "video.failed"
    assert event.data.id == video.id


@pytest.mark.parametrize("status", [500, 307])
async def test_failures_are_retried_with_the_same_id(
    client: Any, receiver: Receiver, hooked: FastAPI, status: int
) -> None:
    receiver.fail_first, receiver.status = 2, status
    await client.videos.create_and_poll(prompt=PROMPT)
    await wait_for(receiver, 3)
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(ids) == 1  # a redirect is a failure too, never followed
    for headers, body in receiver.received:
        client.webhooks.unwrap(body, headers, secret=SECRET)
    # The receiver has the third request before the sender has read its answer.
    with anyio.fail_after(5):
        while hooked.state.emulator.webhooks.deliveries()[0]["state"] == "pending":
            await anyio.sleep(0.01)
    deliveries = hooked.state.emulator.webhooks.deliveries()
    assert deliveries[0]["state"] == "delivered"
    assert [attempt.get("status") for attempt in deliveries[0]["attempts"]] == [status, status, 204]


async def test_retries_are_bounded(client: Any, receiver: Receiver, hooked: FastAPI) -> None:
    receiver.fail_first = 100
    await client.videos.create_and_poll(prompt=PROMPT)
    await wait_for(receiver, 3)  # the first try and the two configured retries
    with anyio.fail_after(5):
        while hooked.state.emulator.webhooks.deliveries()[0]["state"] != "failed":
            await anyio.sleep(0.01)
    await anyio.sleep(0.2)
    assert len(receiver.received) == 3


async def test_webhooks_can_be_dropped(client: Any, receiver: Receiver, hooked: FastAPI) -> None:
    await client.videos.create_and_poll(prompt=f"{PROMPT} [[no-webhook]]")
    hooked.state.emulator.faults.update({"drop_webhooks": True})
    await client.videos.create_and_poll(prompt=PROMPT)
    hooked.state.emulator.faults.update({"drop_webhooks": False})
    await client.videos.create_and_poll(prompt=PROMPT)
    await wait_for(receiver, 1)
    await anyio.sleep(0.2)
    assert len(receiver.received) == 1
    states = [d["state"] for d in hooked.state.emulator.webhooks.deliveries()]
    assert states == ["dropped", "dropped", "delivered"]
    listed = await client.get("/../_emulator/webhooks", cast_to=object)
    assert [d["state"] for d in listed["data"]] == states


def test_signature_matches_the_reference_vector() -> None:
    """The test vector from the protocol reference, signed by our sender."""
    sender = WebhookSender(make_settings(webhook_url="http://x", webhook_secret=SECRET))
    body = (
        '{"object":"event","id":"evt_685343a1381c819085d44c354e1b330e","type":"video.completed",'
        '"created_at":1758941485,"data":{"id":"video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5"}}'
    )
    assert sender._signer is not None
    signature = sender._signer.sign(
        "wh_685342e6c53c8190a1be43f081506c52", datetime.fromtimestamp(1758941485, UTC), body
    )
    assert signature == "v1,8kltKrG6w/oJhmU6wiaohQiVI3UHDA06zO6xTpy1OAc="
