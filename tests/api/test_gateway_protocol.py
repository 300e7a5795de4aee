"""Where the /v1 gateway follows the protocol to the letter (as the emulator does): strict
request checks and their codes, 401 codes, poll hints, cursors past deleted videos, and 429s
that tell clients whether a retry can help."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from reelforge.domain.accounts import Role
from tests.support.api import BASE_URL, Caller, MakeCaller, archive, runtime_of
from tests.support.protocol import assert_protocol_error, multipart

pytestmark = pytest.mark.anyio

POLL_AFTER = "openai-poll-after-ms"
ASSETS = {"video": b"\x00" * 64, "thumbnail": b"RIFF.WEBP", "spritesheet": b"\xff\xd8"}


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def png_data_url(width: int, height: int) -> str:
    return "data:image/png;base64," + base64.b64encode(_png(width, height)).decode()


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


async def create(caller: Caller, prompt: str = "a fox") -> dict[str, Any]:
    response = await caller.client.post("/v1/videos", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


# --- request checks ----------------------------------------------------------------------

REF = "input_reference"
# (body as httpx options, status, code, param, words the message must hold)
STRICT_CREATES: list[tuple[dict[str, Any], str, str, str]] = [
    ({"json": {"prompt": "x", "seconds": 8}}, "invalid_type", "seconds", "got an integer"),
    ({"json": {"prompt": "x", "seconds": 8.0}}, "invalid_type", "seconds", "got a decimal"),
    ({"json": {"prompt": 5}}, "invalid_type", "prompt", "expected a string"),
    ({"json": {"prompt": "x", "size": ["1280x720"]}}, "invalid_type", "size", "got an array"),
    ({"json": {"prompt": "x", "model": True}}, "invalid_type", "model", "got a boolean"),
    ({"json": {"prompt": "x", REF: "data:,"}}, "invalid_type", REF, "expected an object"),
    ({"json": {"prompt": "x", REF: ["data:"]}}, "invalid_type", REF, "got an array"),
    ({"json": [1]}, "invalid_type", "body", "expected an object"),
    ({"json": {}}, "missing_required_parameter", "prompt", "Missing required parameter"),
    ({"json": {"prompt": None}}, "missing_required_parameter", "prompt", "'prompt'"),
    ({"json": {"prompt": "x", "duration": 8}}, "unknown_parameter", "duration", "'duration'"),
    ({"json": {"prompt": "x", "quality": "high"}}, "unknown_parameter", "quality", "'quality'"),
    ({"files": multipart(prompt="x", fps="24")}, "unknown_parameter", "fps", "'fps'"),
    ({"files": multipart(model="sora-2")}, "missing_required_parameter", "prompt", "'prompt'"),
    ({"files": multipart(prompt="x", **{REF: "text"})}, "invalid_type", REF, "expected a file"),
    (
        {"files": {"prompt": ("prompt.txt", b"a fox", "text/plain")}},
        "invalid_type",
        "prompt",
        "got a file",
    ),
]


@pytest.mark.parametrize(("options", "code", "param", "words"), STRICT_CREATES)
async def test_a_create_is_checked_as_the_protocol_checks_it(
    ada: Caller, options: dict[str, Any], code: str, param: str, words: str
) -> None:
    response = await ada.client.post("/v1/videos", **options)

    message = assert_protocol_error(response, 400, code, param)
    assert words in message
    assert f"'{param}'" in message or param == "body"
    assert (await ada.client.get("/v1/videos")).json()["data"] == []


STRICT_REMIXES: list[tuple[dict[str, Any], str, str]] = [
    ({"json": {}}, "missing_required_parameter", "prompt"),
    ({"json": {"prompt": 7}}, "invalid_type", "prompt"),
    ({"json": {"prompt": "x", "seconds": "8"}}, "unknown_parameter", "seconds"),
    ({"json": "at night"}, "invalid_type", "body"),
    ({"files": multipart(other="x")}, "unknown_parameter", "other"),
    ({"files": {"prompt": ("p.txt", b"at night", "text/plain")}}, "invalid_type", "prompt"),
    (
        {"content": b"", "headers": {"content-type": "application/json"}},
        "missing_required_parameter",
        "prompt",
    ),
]


@pytest.mark.parametrize(("options", "code", "param"), STRICT_REMIXES)
async def test_a_remix_is_checked_as_the_protocol_checks_it(
    app: FastAPI, ada: Caller, options: dict[str, Any], code: str, param: str
) -> None:
    video = await create(ada)
    await archive(runtime_of(app), video["id"], ASSETS)

    response = await ada.client.post(f"/v1/videos/{video['id']}/remix", **options)

    assert_protocol_error(response, 400, code, param)
    assert [v["id"] for v in (await ada.client.get("/v1/videos")).json()["data"]] == [video["id"]]


async def test_what_the_protocol_accepts_still_passes(ada: Caller) -> None:
    sent = [
        {"json": {"prompt": "x", "model": None, "size": None, "seconds": None}},
        {"json": {"prompt": "x", REF: {"image_url": png_data_url(720, 1280)}}},
        {"files": multipart(prompt="x", model="sora-2", size="1280x720", seconds="8")},
        {"files": {"prompt": (None, "x"), REF: ("f.png", _png(720, 1280), "image/png")}},
    ]

    statuses = [(await ada.client.post("/v1/videos", **options)).status_code for options in sent]

    assert statuses == [200] * len(sent)


async def test_the_guides_api_keeps_its_looser_reading(ada: Caller) -> None:
    """The guide's client sends `seconds` as a number and the reference as a bare data URL."""
    response = await ada.client.post(
        "/api/videos",
        json={"prompt": "a fox", "seconds": 8, REF: png_data_url(720, 1280)},
    )

    assert response.status_code == 201, response.text
    assert response.json()["data"]["seconds"] == "8"


async def test_a_wrong_key_is_invalid_api_key_and_a_missing_one_has_no_code(
    app: FastAPI, ada: Caller
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as anonymous:
        wrong = await anonymous.get("/v1/videos", headers={"Authorization": "Bearer rf_nope"})
        token = await anonymous.get("/v1/videos", headers={"Authorization": "Bearer a.b.c"})
        basic = await anonymous.get("/v1/videos", headers={"Authorization": "Basic eDp5"})
        missing = await anonymous.get("/v1/videos")
        guide = await anonymous.get("/api/videos", headers={"Authorization": "Bearer rf_nope"})

    assert_protocol_error(wrong, 401, "invalid_api_key")
    assert_protocol_error(token, 401, "invalid_api_key")
    assert_protocol_error(basic, 401, None)
    assert_protocol_error(missing, 401, None)
    for response in (wrong, token, basic, missing, guide):
        assert response.headers["www-authenticate"] == "Bearer"
    # /api keeps its own code.
    assert (guide.status_code, guide.json()["code"]) == (401, "unauthorized")


# --- poll hints --------------------------------------------------------------------------


async def test_unfinished_videos_carry_the_poll_interval(app: FastAPI, ada: Caller) -> None:
    made = await ada.client.post("/v1/videos", json={"prompt": "a fox"})
    video_id = made.json()["id"]
    pending = await ada.client.get(f"/v1/videos/{video_id}")
    await archive(runtime_of(app), video_id, ASSETS)
    done = await ada.client.get(f"/v1/videos/{video_id}")
    remix = await ada.client.post(f"/v1/videos/{video_id}/remix", json={"prompt": "at night"})
    cancelled = await create(ada)
    assert (await ada.client.post(f"/api/videos/{cancelled['id']}/cancel")).status_code == 200
    failed = await ada.client.get(f"/v1/videos/{cancelled['id']}")

    for response in (made, pending, remix):
        assert response.json()["status"] == "queued"
        assert int(response.headers[POLL_AFTER]) > 0
    assert done.json()["status"] == "completed"
    assert failed.json()["status"] == "failed"
    for response in (done, failed):
        assert POLL_AFTER not in response.headers


# --- cursors -----------------------------------------------------------------------------


async def test_a_cursor_naming_a_deleted_video_pages_on(ada: Caller) -> None:
    made = [(await create(ada, f"clip {i}"))["id"] for i in range(5)]
    newest_first = made[::-1]

    first = (await ada.client.get("/v1/videos", params={"limit": 2})).json()
    for video in first["data"]:
        assert (await ada.client.delete(f"/v1/videos/{video['id']}")).status_code == 200
    after_deleted = await ada.client.get("/v1/videos", params={"limit": 2, "after": made[3]})
    ascending = await ada.client.get(
        "/v1/videos", params={"order": "asc", "after": newest_first[0]}
    )
    from_the_start = await ada.client.get("/v1/videos", params={"order": "asc", "after": made[0]})

    assert [v["id"] for v in first["data"]] == newest_first[:2]
    assert after_deleted.status_code == 200, after_deleted.text
    assert [v["id"] for v in after_deleted.json()["data"]] == newest_first[2:4]
    assert after_deleted.json()["has_more"] is True
    # Past the newest (deleted) video in ascending order there is nothing.
    assert ascending.json()["data"] == []
    assert [v["id"] for v in from_the_start.json()["data"]] == made[1:3]


async def test_another_users_video_is_no_cursor_even_once_deleted(
    ada: Caller, make_caller: MakeCaller
) -> None:
    bob = await make_caller("bob@example.org")
    await create(ada)
    live = (await create(bob, "bob's"))["id"]
    gone = (await create(bob, "bob's, deleted"))["id"]
    assert (await bob.client.delete(f"/v1/videos/{gone}")).status_code == 200
    unknown = "video_" + "0" * 48

    answers = {
        video_id: await ada.client.get("/v1/videos", params={"after": video_id})
        for video_id in (live, gone, unknown)
    }

    for video_id, response in answers.items():
        message = assert_protocol_error(response, 400, "invalid_value", "after")
        # Word for word what an id that never existed gets: nothing tells them apart.
        assert message.replace(video_id, "<id>") == answers[unknown].json()["error"][
            "message"
        ].replace(unknown, "<id>")


# --- quota and budget --------------------------------------------------------------------


async def _set_quota(
    make_caller: MakeCaller, user: Caller, max_videos: int | None, budget: str | None
) -> None:
    root = await make_caller("root@example.org", Role.ADMIN)
    quota = {"max_videos": max_videos, "period_days": 30, "monthly_budget": budget}
    put = await root.client.put(f"/api/admin/users/{user.account.id}/quota", json=quota)
    assert put.status_code == 200, put.text


@pytest.mark.parametrize(
    ("max_videos", "budget", "code"),
    [(1, None, "quota_exceeded"), (None, "0.50", "budget_exceeded")],
)
async def test_over_quota_or_budget_says_not_to_retry_and_promises_no_wait(
    ada: Caller, make_caller: MakeCaller, max_videos: int | None, budget: str | None, code: str
) -> None:
    await _set_quota(make_caller, ada, max_videos, budget)
    assert (await ada.client.post("/v1/videos", json={"prompt": "a fox"})).status_code == 200

    gateway = await ada.client.post("/v1/videos", json={"prompt": "one more"})
    guide = await ada.client.post("/api/videos", json={"prompt": "one more"})

    message = assert_protocol_error(gateway, 429, code)
    assert gateway.json()["error"]["type"] == "insufficient_quota"
    assert guide.status_code == 429
    assert guide.json()["code"] == code
    for response in (gateway, guide):
        assert response.headers["x-should-retry"] == "false"
        assert "retry-after" not in response.headers
        assert "retry-after-ms" not in response.headers
    resets = datetime.strptime(message.rsplit("resets at ", 1)[1], "%Y-%m-%dT%H:%M:%SZ")
    assert resets.replace(tzinfo=UTC) > datetime.now(UTC)
