"""The /v1 gateway on the wire: the protocol's exact shapes, ownership, errors and OpenAPI."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from reelforge.domain.accounts import Role
from tests.support.api import Caller, MakeCaller, archive, runtime_of
from tests.support.protocol import assert_protocol_error, multipart

pytestmark = pytest.mark.anyio

VIDEO_KEYS = [
    "id",
    "object",
    "created_at",
    "status",
    "completed_at",
    "error",
    "expires_at",
    "model",
    "progress",
    "prompt",
    "remixed_from_video_id",
    "seconds",
    "size",
]
ASSETS = {"video": bytes(range(256)) * 16, "thumbnail": b"RIFF.WEBP", "spritesheet": b"\xff\xd8"}


def png_data_url(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


async def create(caller: Caller, **body: Any) -> dict[str, Any]:
    response = await caller.client.post("/v1/videos", json={"prompt": "a fox", **body})
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


async def completed(app: FastAPI, caller: Caller) -> dict[str, Any]:
    video = await create(caller)
    await archive(runtime_of(app), video["id"], ASSETS)
    return video


async def test_the_video_object_is_exactly_the_protocols(app: FastAPI, ada: Caller) -> None:
    response = await ada.client.post(
        "/v1/videos",
        json={
            "prompt": "a fox",
            "size": "1280x720",
            "seconds": "8",
            "input_reference": {"image_url": png_data_url(1280, 720)},
        },
    )

    assert response.status_code == 200
    video = response.json()
    assert list(video) == VIDEO_KEYS
    assert video | {"id": None, "created_at": None} == {
        "id": None,
        "object": "video",
        "created_at": None,
        "status": "queued",
        "completed_at": None,
        "error": None,
        "expires_at": None,
        "model": "sora-2",
        "progress": 0,
        "prompt": "a fox",
        "remixed_from_video_id": None,
        "seconds": "8",
        "size": "1280x720",
    }
    assert type(video["created_at"]) is int
    assert response.headers["x-request-id"]
    assert response.headers["RateLimit-Limit"] == "30"
    await archive(runtime_of(app), video["id"], ASSETS)
    done = (await ada.client.get(f"/v1/videos/{video['id']}")).json()
    assert list(done) == VIDEO_KEYS
    assert (done["status"], done["progress"], done["expires_at"]) == ("completed", 100, None)
    assert type(done["completed_at"]) is int
    listed = (await ada.client.get("/v1/videos")).json()
    assert list(listed) == ["object", "data", "first_id", "last_id", "has_more"]
    assert listed | {"data": None} == {
        "object": "list",
        "data": None,
        "first_id": video["id"],
        "last_id": video["id"],
        "has_more": False,
    }
    assert listed["data"] == [done]
    deleted = await ada.client.delete(f"/v1/videos/{video['id']}")
    assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert list(deleted.json()) == ["id", "object", "deleted"]


async def test_multipart_create_and_remix_take_protocol_fields(app: FastAPI, ada: Caller) -> None:
    reference = png_data_url(720, 1280)
    made = await ada.client.post(
        "/v1/videos",
        files=multipart(prompt="fox", size="720x1280", **{"input_reference[image_url]": reference}),
    )
    assert made.status_code == 200, made.text
    await archive(runtime_of(app), made.json()["id"], ASSETS)

    remix = await ada.client.post(
        f"/v1/videos/{made.json()['id']}/remix", files=multipart(prompt="owl")
    )

    assert remix.status_code == 200, remix.text
    assert remix.json()["remixed_from_video_id"] == made.json()["id"]
    assert remix.json()["prompt"] == "owl"


async def test_ownership_over_every_route_that_takes_an_id(
    app: FastAPI, ada: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    bob = await make_caller("bob@example.org")
    root = await make_caller("root@example.org", Role.ADMIN)
    callers = {"owner": ada.client, "other user": bob.client, "anonymous": client}
    callers["admin"] = root.client
    expected = {"owner": 200, "other user": 404, "anonymous": 401, "admin": 200}
    routes = {
        "get": ("GET", "/v1/videos/{id}", None),
        "content": ("GET", "/v1/videos/{id}/content?variant=thumbnail", None),
        "remix": ("POST", "/v1/videos/{id}/remix", {"prompt": "mine"}),
        "delete": ("DELETE", "/v1/videos/{id}", None),
    }

    remixes: dict[str, str] = {}

    for route, (method, path, body) in routes.items():
        for who, http in callers.items():
            # A fresh video each time, so a delete doesn't hide the video from the next caller.
            video = await completed(app, ada)
            response = await http.request(method, path.format(id=video["id"]), json=body)

            assert response.status_code == expected[who], (route, who, response.text)
            if expected[who] == 404:
                assert_protocol_error(response, 404, "not_found")
            elif expected[who] == 401:
                # No key at all: the protocol's 401 carries no code (a wrong one is
                # `invalid_api_key`, see test_gateway_protocol.py).
                assert_protocol_error(response, 401, None)
            elif route == "content":
                assert response.content == ASSETS["thumbnail"]
            elif route == "get":
                assert response.json()["id"] == video["id"]
            elif route == "remix":
                remixes[who] = response.json()["id"]
    # Each remix belongs to whoever made it: the admin's is not the owner's.
    assert (await ada.client.get(f"/v1/videos/{remixes['owner']}")).status_code == 200
    assert (await ada.client.get(f"/v1/videos/{remixes['admin']}")).status_code == 404


async def test_content_answers_ranges_and_etags(app: FastAPI, ada: Caller) -> None:
    video = await completed(app, ada)
    path = f"/v1/videos/{video['id']}/content"

    whole = await ada.client.get(path, headers={"Accept": "application/binary"})
    part = await ada.client.get(path, headers={"Range": "bytes=10-19"})
    cached = await ada.client.get(path, headers={"If-None-Match": whole.headers["etag"]})

    assert (whole.status_code, whole.content) == (200, ASSETS["video"])
    assert (part.status_code, part.content) == (206, ASSETS["video"][10:20])
    assert cached.status_code == 304


async def test_bad_requests_answer_in_the_protocol_shape(ada: Caller) -> None:
    video = await create(ada)
    json = {"content-type": "application/json"}
    ref = "input_reference"
    remix = f"/v1/videos/{video['id']}/remix"
    content = f"/v1/videos/{video['id']}/content"
    cases: list[tuple[str, str, dict[str, Any], int, str | None]] = [
        ("POST", "/v1/videos", {"content": b"{nope", "headers": json}, 400, "body"),
        ("POST", "/v1/videos", {"json": {"prompt": "x", "seconds": "7"}}, 400, "seconds"),
        ("POST", "/v1/videos", {"json": {"prompt": "x", ref: {"file_id": "file-1"}}}, 400, ref),
        (
            "POST",
            "/v1/videos",
            {"json": {"prompt": "x", ref: {"image_url": "https://x"}}},
            400,
            ref,
        ),
        (
            "POST",
            "/v1/videos",
            {"json": {"prompt": "x", ref: {"image_url": "not a data URL"}}},
            400,
            ref,
        ),
        (
            "POST",
            "/v1/videos",
            {"files": multipart(prompt="x", **{f"{ref}[file_id]": "f"})},
            400,
            ref,
        ),
        (
            "POST",
            "/v1/videos",
            {"json": {"prompt": "x", "characters": [{"id": "c"}]}},
            400,
            "characters",
        ),
        (
            "POST",
            "/v1/videos",
            {"files": multipart(prompt="x", **{"characters[][id]": "c"})},
            400,
            "characters",
        ),
        ("POST", remix, {"json": {"prompt": " "}}, 400, "prompt"),
        ("GET", "/v1/videos", {"params": {"after": "video_nope"}}, 400, "after"),
        ("GET", "/v1/videos", {"params": {"limit": 101}}, 400, "limit"),
        ("GET", "/v1/videos", {"params": {"order": "sideways"}}, 400, "order"),
        ("GET", content, {"params": {"variant": "gif"}}, 400, "variant"),
        ("GET", "/v1/videoz", {}, 404, None),
        ("PUT", f"/v1/videos/{video['id']}", {}, 405, None),
    ]
    codes = {
        400: "invalid_value",
        404: "not_found",
        405: "method_not_allowed",
    }

    for method, path, options, status, param in cases:
        response = await ada.client.request(method, path, **options)
        message = assert_protocol_error(response, status, codes[status], param)
        assert message, (method, path, options)
    listed = (await ada.client.get("/v1/videos")).json()["data"]
    assert [v["id"] for v in listed] == [video["id"]]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"limit": "many"}, "invalid_type", "limit"),
        ({"limit": 101}, "invalid_value", "limit"),
        ({"order": "sideways"}, "invalid_value", "order"),
    ],
)
async def test_invalid_query_parameters_are_the_protocols_400(
    ada: Caller, params: dict[str, object], code: str, param: str
) -> None:
    """The SDK raises BadRequestError for these, as against OpenAI; /api keeps its 422."""
    response = await ada.client.get("/v1/videos", params=params)
    assert_protocol_error(response, 400, code, param)

    guide = await ada.client.get("/api/videos", params=params)
    assert guide.status_code == 422, guide.text
    assert (guide.json()["field"], guide.json()["code"]) == (param, "invalid_request")


async def test_the_guides_api_shares_the_parser(ada: Caller) -> None:
    """/api takes the protocol's reference object too: there is one create parser."""
    response = await ada.client.post(
        "/api/videos",
        json={"prompt": "a fox", "input_reference": {"image_url": png_data_url(720, 1280)}},
    )

    assert response.status_code == 201, response.text


async def test_openapi_describes_every_gateway_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    operations = {
        (method, path)
        for path, methods in paths.items()
        if path.startswith("/v1/")
        for method in methods
    }

    assert operations == {
        ("post", "/v1/videos"),
        ("get", "/v1/videos"),
        ("get", "/v1/videos/{video_id}"),
        ("delete", "/v1/videos/{video_id}"),
        ("get", "/v1/videos/{video_id}/content"),
        ("post", "/v1/videos/{video_id}/remix"),
        ("post", "/v1/videos/edits"),
        ("post", "/v1/videos/extensions"),
        ("post", "/v1/videos/characters"),
        ("get", "/v1/videos/characters/{character_id}"),
    }
    for method, path in operations:
        responses = paths[path][method]["responses"]
        assert "401" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith("4"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ProtocolError"}, (path, status)
    for path in ("/v1/videos/edits", "/v1/videos/extensions", "/v1/videos/characters"):
        assert "200" not in paths[path]["post"]["responses"], path
    for path in ("/v1/videos", "/v1/videos/{video_id}/remix"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "multipart/form-data"}
    create = paths["/v1/videos"]["post"]
    assert set(create["responses"]) >= {"200", "400", "401", "409", "429"}
    video = spec["components"]["schemas"]["VideoResource"]
    assert list(video["properties"]) == VIDEO_KEYS
    assert video["required"] == VIDEO_KEYS
    listing = paths["/v1/videos"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (0, 100)
    content_types = paths["/v1/videos/{video_id}/content"]["get"]["responses"]["200"]["content"]
    assert set(content_types) == {"video/mp4", "image/webp", "image/jpeg"}
