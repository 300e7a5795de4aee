"""Bad input at the edge (api/edge.py), on SQLite and PostgreSQL: NUL characters, body limits,
authentication before the body, and the refusals' own details (Allow, ids as sent, Range)."""

from __future__ import annotations

import io
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import func, select

from reelforge.api.app import create_app
from reelforge.api.edge import DEFAULT_MAX_BODY_BYTES
from reelforge.db.models import ApiKey, Video, WebhookEndpoint
from reelforge.domain.accounts import Role
from reelforge.services.references import MAX_REFERENCE_BYTES
from tests.support.accounts import PASSWORD
from tests.support.api import BASE_URL, Caller, MakeCaller, callers, runtime_of

pytestmark = pytest.mark.anyio

NUL = "\x00"


@pytest.fixture
async def db_app(make_settings: Any, migrated_url: str) -> AsyncIterator[FastAPI]:
    """The app on a migrated database of each dialect (conftest's `app` is SQLite only)."""
    application = create_app(
        make_settings(database_url=migrated_url, embedded_worker=False, login_rate_limit="3/minute")
    )
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def make(db_app: FastAPI) -> AsyncIterator[MakeCaller]:
    async with AsyncExitStack() as stack:
        yield await callers(db_app, stack)


@pytest.fixture
async def ada(make: MakeCaller) -> Caller:
    return await make("ada@example.org", Role.ADMIN)


@pytest.fixture
async def anonymous(db_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=db_app), base_url=BASE_URL
    ) as client:
        yield client


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, "PNG")
    return buffer.getvalue()


# (method, path, what to send, the field the 400 must name): JSON bodies, multipart fields,
# query parameters and path parameters, on /api, /v1, admin, key and webhook routes.
NUL_REQUESTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/auth/token", {"json": {"email": f"a{NUL}@x.org", "password": "p"}}, "email"),
    ("POST", "/api/auth/login", {"json": {"email": "a@x.org", "password": f"p{NUL}"}}, "password"),
    ("POST", "/api/videos", {"json": {"prompt": f"a fox{NUL}"}}, "prompt"),
    ("POST", "/api/videos", {"data": {"prompt": f"a{NUL}"}, "files": {"x": b"1"}}, "prompt"),
    ("POST", "/v1/videos", {"json": {"prompt": "a fox", "model": f"sora-2{NUL}"}}, "model"),
    ("POST", "/v1/videos", {"data": {"size": f"1{NUL}"}, "files": {"x": b"1"}}, "size"),
    ("POST", "/api/videos/estimate", {"json": {"prompt": "a", "seconds": f"4{NUL}"}}, "seconds"),
    ("GET", "/api/videos?q=fox%00", {}, "q"),
    ("GET", "/api/videos?status=queued&status=%00", {}, "status"),
    ("GET", "/api/videos?cursor=%00", {}, "cursor"),
    ("GET", "/v1/videos?after=video_%00", {}, "after"),
    ("GET", "/api/videos/video_%00", {}, "video_id"),
    ("DELETE", "/v1/videos/video_%00", {}, "video_id"),
    ("POST", "/api/videos/video_%00/remix", {"json": {"prompt": "b"}}, "video_id"),
    ("POST", "/v1/videos/video_x/remix", {"json": {"prompt": f"b{NUL}"}}, "prompt"),
    ("POST", "/api/keys", {"json": {"name": f"laptop{NUL}"}}, "name"),
    ("DELETE", "/api/keys/key_%00", {}, "key_id"),
    ("GET", "/api/admin/users/user_%00/usage", {}, "user_id"),
    ("PUT", "/api/admin/users/u%00/quota", {"json": {"max_videos": 1}}, "user_id"),
    (
        "POST",
        "/api/webhooks/endpoints",
        {"json": {"url": "https://example.org/h", "event_types": [f"video.completed{NUL}"]}},
        "event_types.0",
    ),
    ("POST", "/api/webhooks/endpoints", {"json": {"url": f"https://x{NUL}.org"}}, "url"),
    ("GET", "/api/webhooks/deliveries?endpoint_id=we_%00", {}, "endpoint_id"),
    ("POST", "/api/webhooks/deliveries/wd_%00/replay", {}, "delivery_id"),
    ("DELETE", "/api/webhooks/endpoints/we_%00", {}, "endpoint_id"),
    (
        "POST",
        "/api/videos",
        {"json": {"prompt": "a"}, "headers": {"Idempotency-Key": f"k{NUL}"}},
        "idempotency-key",
    ),
]


@pytest.mark.parametrize(("method", "path", "send", "field"), NUL_REQUESTS)
async def test_a_nul_character_anywhere_is_a_400_naming_the_field_and_changes_nothing(
    db_app: FastAPI, ada: Caller, method: str, path: str, send: dict[str, Any], field: str
) -> None:
    response = await ada.client.request(method, path, **send)

    assert response.status_code == 400, response.text
    body = response.json()
    named = body["error"]["param"] if path.startswith("/v1/") else body["field"]
    assert named == field, body
    async with runtime_of(db_app).database.session() as session:
        for table in (Video, WebhookEndpoint):
            assert await session.scalar(select(func.count()).select_from(table)) == 0
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 1


async def test_a_nul_in_an_anonymous_sign_in_is_a_400_not_a_500(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post(
        "/api/auth/token", json={"email": f"ada@example.org{NUL}", "password": PASSWORD}
    )

    assert response.status_code == 400, response.text
    assert response.json()["field"] == "email"


async def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos", content=b'{"prompt": "a fox says \\\\u0000"}', headers=_JSON
    )

    assert response.status_code == 201, response.text
    assert response.json()["data"]["prompt"] == "a fox says \\u0000"


_JSON = {"content-type": "application/json"}


class Source:
    """A request body that counts what the server pulled from it."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size = size
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            piece = min(self.chunk, self.size - self.pulled)
            self.pulled += piece
            yield b" " * piece


async def test_an_anonymous_300_mb_body_is_refused_unread(anonymous: httpx.AsyncClient) -> None:
    body = Source(300 * 1024 * 1024)

    response = await anonymous.post(
        "/api/webhooks/endpoints",
        content=body,
        headers=_JSON | {"content-length": str(body.size)},
    )

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert body.pulled == 0


async def test_a_chunked_body_over_the_limit_stops_being_read_past_it(ada: Caller) -> None:
    body = Source(50 * 1024 * 1024)

    response = await ada.client.post("/api/keys", content=body, headers=_JSON)

    assert response.status_code == 413, response.text
    assert body.pulled <= DEFAULT_MAX_BODY_BYTES + body.chunk


async def test_a_200_mb_multipart_image_is_refused_before_it_is_read(ada: Caller) -> None:
    body = Source(200 * 1024 * 1024)
    headers = {
        "content-type": "multipart/form-data; boundary=xyz",
        "content-length": str(body.size),
    }

    response = await ada.client.post("/v1/videos", content=body, headers=headers)

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert body.pulled == 0


async def test_a_create_of_the_largest_reference_as_json_is_within_the_limit(
    ada: Caller,
) -> None:
    # A data: URL of a 20 MB image is about 27 MB of JSON: for one just past 20 MB the size
    # rule, not the body limit, must be what answers.
    image = "data:image/png;base64," + "A" * (4 * math.ceil(MAX_REFERENCE_BYTES / 3) + 4)

    response = await ada.client.post(
        "/api/videos", json={"prompt": "a fox", "input_reference": image}
    )

    assert response.status_code == 400, response.text
    assert response.json()["field"] == "input_reference"


async def test_authentication_comes_before_the_body_is_parsed(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post("/api/keys", content=b"{not json", headers=_JSON)

    assert response.status_code == 401, response.text


async def test_a_reference_whose_pixels_do_not_decode_is_a_400(ada: Caller) -> None:
    image = png(1280, 720)
    broken = image[: len(image) // 2]  # a valid header over truncated pixel data

    response = await ada.client.post(
        "/api/videos",
        data={"prompt": "a fox", "size": "1280x720"},
        files={"input_reference": ("first.png", broken, "image/png")},
    )

    assert response.status_code == 400, response.text
    assert response.json()["field"] == "input_reference"
    assert (await ada.client.get("/api/videos")).json()["data"] == []


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/videos/video_x", {"GET", "DELETE"}),
        ("PUT", "/api/keys", {"GET", "POST"}),
        ("PATCH", "/v1/videos", {"GET", "POST"}),
    ],
)
async def test_a_405_lists_every_method_of_the_path(
    ada: Caller, method: str, path: str, allowed: set[str]
) -> None:
    response = await ada.client.request(method, path)

    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_a_404_names_the_id_exactly_as_sent(ada: Caller) -> None:
    response = await ada.client.get("/api/videos/Video_MixedCase")

    assert response.status_code == 404
    assert "Video_MixedCase" in str(response.json()["error"])


async def test_logout_ends_the_session_server_side(
    make: MakeCaller, anonymous: httpx.AsyncClient
) -> None:
    await make("bob@example.org")
    login = await anonymous.post(
        "/api/auth/login", json={"email": "bob@example.org", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    cookie = anonymous.cookies["reelforge_session"]
    assert (await anonymous.get("/api/me")).status_code == 200

    out = await anonymous.post("/api/auth/logout")
    assert out.status_code == 200
    anonymous.cookies.set("reelforge_session", cookie)  # what a stolen copy would send
    replayed = await anonymous.get("/api/me")

    assert replayed.status_code == 401


async def test_sign_in_attempts_are_limited_per_account(
    make: MakeCaller, anonymous: httpx.AsyncClient
) -> None:
    await make("bob@example.org")
    wrong = {"email": "bob@example.org", "password": "guess"}
    for _ in range(3):
        assert (await anonymous.post("/api/auth/token", json=wrong)).status_code == 401

    refused = await anonymous.post(
        "/api/auth/token", json={"email": "BOB@example.org", "password": PASSWORD}
    )

    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1


async def test_sign_in_attempts_are_limited_per_address(
    anonymous: httpx.AsyncClient,
) -> None:
    for n in range(3):
        attempt = {"email": f"nobody{n}@example.org", "password": "guess"}
        assert (await anonymous.post("/api/auth/login", json=attempt)).status_code == 401

    refused = await anonymous.post(
        "/api/auth/login", json={"email": "someone@example.org", "password": "guess"}
    )

    assert refused.status_code == 429
    assert "retry-after" in refused.headers
