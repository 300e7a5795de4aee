"""The wire below the SDK: JSON and multipart variants, headers, ranges and malformed input."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx2
import pytest
from PIL import Image

from reelforge.emulator.service import Emulator

pytestmark = pytest.mark.anyio

PROMPT = "a calm ocean at sunset"
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


def image(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


async def wait_done(raw: httpx2.AsyncClient, video_id: str) -> dict[str, Any]:
    import anyio

    with anyio.fail_after(30):
        while True:
            video: dict[str, Any] = (await raw.get(f"/v1/videos/{video_id}")).json()
            if video["status"] in ("completed", "failed"):
                return video
            await anyio.sleep(0.01)


async def completed(raw: httpx2.AsyncClient, prompt: str = PROMPT) -> dict[str, Any]:
    created = await raw.post("/v1/videos", json={"prompt": prompt, "size": "720x1280"})
    assert created.status_code == 200, created.text
    video = await wait_done(raw, created.json()["id"])
    assert video["status"] == "completed"
    return video


def assert_error(response: httpx2.Response, status: int, **expected: Any) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for key, value in expected.items():
        assert error[key] == value, (key, error)
    assert response.headers["x-request-id"].startswith("req_")
    return error


async def test_video_object_has_every_key_in_the_real_order(raw: httpx2.AsyncClient) -> None:
    response = await raw.post("/v1/videos", json={"prompt": PROMPT, "seconds": "4"})
    assert response.status_code == 200
    assert list(response.json()) == VIDEO_KEYS
    assert response.headers["content-type"] == "application/json"
    assert response.headers["openai-poll-after-ms"] == "10"
    assert response.headers["openai-version"] == "2020-10-01"
    done = await wait_done(raw, response.json()["id"])
    assert list(done) == VIDEO_KEYS
    final = await raw.get(f"/v1/videos/{done['id']}")
    assert "openai-poll-after-ms" not in final.headers


async def test_json_create_with_a_data_url_reference(raw: httpx2.AsyncClient) -> None:
    body = {
        "prompt": PROMPT,
        "size": "1280x720",
        "input_reference": {"image_url": data_url(image(1280, 720))},
    }
    response = await raw.post("/v1/videos", json=body)
    assert response.status_code == 200, response.text
    assert (await wait_done(raw, response.json()["id"]))["status"] == "completed"
    wrong = {**body, "input_reference": {"image_url": data_url(image(720, 1280))}}
    assert_error(await raw.post("/v1/videos", json=wrong), 400, param="input_reference")


async def test_multipart_bracket_fields(raw: httpx2.AsyncClient) -> None:
    form = {
        "prompt": PROMPT,
        "size": "720x1280",
        "input_reference[image_url]": data_url(image(720, 1280)),
    }
    response = await raw.post("/v1/videos", data=form, files={"unused": ("x", b"")})
    # A stray file part is an unknown parameter, as the real API would say.
    assert_error(response, 400, code="unknown_parameter", param="unused")
    response = await raw.post("/v1/videos", data=form, files={})
    assert response.status_code == 200, response.text
    source = await wait_done(raw, response.json()["id"])
    edit = await raw.post(
        "/v1/videos/edits",
        files={"prompt": (None, "now at dusk"), "video[id]": (None, source["id"])},
    )
    assert edit.status_code == 200, edit.text
    assert edit.json()["remixed_from_video_id"] == source["id"]
    multipart_remix = await raw.post(
        f"/v1/videos/{source['id']}/remix", files={"prompt": (None, "again")}
    )
    assert multipart_remix.status_code == 200, multipart_remix.text


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": PROMPT, "seconds": 8}, "seconds", "invalid_type"),
        ({"prompt": 5}, "prompt", "invalid_type"),
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": PROMPT, "quality": "high"}, "quality", "unknown_parameter"),
        (
            {"prompt": PROMPT, "input_reference": "https://x/y.png"},
            "input_reference",
            "invalid_type",
        ),
        ({"prompt": PROMPT, "input_reference": {"file_id": "file-1"}}, "input_reference", None),
        (
            {"prompt": PROMPT, "input_reference": {"image_url": "https://example.com/a.png"}},
            "input_reference.image_url",
            "invalid_value",
        ),
        (
            {"prompt": PROMPT, "input_reference": {"image_url": "data:image/png;base64,@@"}},
            "input_reference.image_url",
            "invalid_value",
        ),
        (
            {"prompt": PROMPT, "input_reference": {"image_url": data_url(b"not an image")}},
            "input_reference",
            "invalid_value",
        ),
        ({"prompt": PROMPT, "characters": "char_1"}, "characters", "invalid_type"),
        ({"prompt": "[[latency=soon]] x"}, "prompt", "invalid_value"),
        ({"prompt": "[[moderation=create]] x"}, "prompt", "moderation_blocked"),
    ],
)
async def test_json_create_errors(
    raw: httpx2.AsyncClient, body: dict[str, Any], param: str, code: str | None
) -> None:
    error = assert_error(await raw.post("/v1/videos", json=body), 400, param=param)
    if code is not None:
        assert error["code"] == code


async def test_type_errors_say_what_was_expected(raw: httpx2.AsyncClient) -> None:
    as_json = await raw.post("/v1/videos", json={"prompt": PROMPT, "input_reference": "x"})
    assert assert_error(as_json, 400)["message"] == (
        "Invalid type for 'input_reference': expected an object, but got a string instead."
    )
    as_form = await raw.post("/v1/videos", data={"prompt": PROMPT, "input_reference": "x"})
    assert assert_error(as_form, 400)["message"] == (
        "Invalid type for 'input_reference': expected a file, but got a string instead."
    )


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"prompt"', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"prompt=x", "text/plain"),
        (b"--nope\r\ngarbage", "multipart/form-data; boundary=zzz"),
        (b"--zzz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zzz--", "multipart/form-data"),
        (b"a" * 10, "multipart/form-data; boundary="),
    ],
)
async def test_malformed_bodies_are_400(
    raw: httpx2.AsyncClient, content: bytes, content_type: str
) -> None:
    for path in ("/v1/videos", "/v1/videos/edits", "/v1/videos/extensions"):
        response = await raw.post(path, content=content, headers={"content-type": content_type})
        assert_error(response, 400)


async def test_oversized_body_is_413(emulator: Emulator, raw: httpx2.AsyncClient) -> None:
    size = emulator.settings.max_upload_bytes + 1
    response = await raw.post(
        "/v1/videos", content=b"x" * size, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, code="request_too_large")


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("limit=1000", "limit", "integer_above_max_value"),
        ("limit=-1", "limit", "integer_below_min_value"),
        ("limit=lots", "limit", "invalid_type"),
        ("limit=99999999999999999999999", "limit", "integer_above_max_value"),
        ("order=sideways", "order", "invalid_value"),
        ("after=video_nope", "after", "invalid_value"),
    ],
)
async def test_list_query_errors(
    raw: httpx2.AsyncClient, query: str, param: str, code: str
) -> None:
    assert_error(await raw.get(f"/v1/videos?{query}"), 400, param=param, code=code)


async def test_list_limit_zero_is_an_empty_page(raw: httpx2.AsyncClient) -> None:
    await raw.post("/v1/videos", json={"prompt": PROMPT})
    page = (await raw.get("/v1/videos?limit=0")).json()
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": True,
    }


async def test_content_headers_and_ranges(raw: httpx2.AsyncClient) -> None:
    video = await completed(raw)
    url = f"/v1/videos/{video['id']}/content"
    full = await raw.get(url, headers={"accept": "application/binary"})
    assert full.status_code == 200
    assert full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    assert int(full.headers["content-length"]) == len(full.content)
    size = len(full.content)
    for variant, media in (("thumbnail", "image/webp"), ("spritesheet", "image/jpeg")):
        response = await raw.get(url, params={"variant": variant})
        assert response.headers["content-type"] == media
        assert int(response.headers["content-length"]) == len(response.content)

    part = await raw.get(url, headers={"range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == full.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    assert part.headers["content-length"] == "10"
    tail = await raw.get(url, headers={"range": "bytes=-5"})
    assert tail.status_code == 206
    assert tail.content == full.content[-5:]
    open_ended = await raw.get(url, headers={"range": f"bytes={size - 3}-"})
    assert open_ended.content == full.content[-3:]
    ignored = await raw.get(url, headers={"range": "lines=1-2"})
    assert ignored.status_code == 200
    assert ignored.content == full.content
    beyond = await raw.get(url, headers={"range": f"bytes={size}-"})
    assert_error(beyond, 416, code="range_not_satisfiable")
    assert beyond.headers["content-range"] == f"bytes */{size}"

    bad_variant = await raw.get(url, params={"variant": "gif"})
    error = assert_error(bad_variant, 400, param="variant")
    assert error["message"] == (
        "Invalid value: 'gif'. Supported values are: 'video', 'thumbnail', and 'spritesheet'."
    )


async def test_auth_is_required(raw: httpx2.AsyncClient) -> None:
    no_key = await raw.get("/v1/videos", headers={"authorization": ""})
    assert assert_error(no_key, 401)["message"].startswith("You didn't provide an API key.")
    basic = await raw.get("/v1/videos", headers={"authorization": "Basic abc"})
    assert_error(basic, 401)
    wrong = await raw.get("/v1/videos", headers={"authorization": "Bearer sk-nope-nope-nope"})
    assert_error(wrong, 401, code="invalid_api_key")


async def test_any_key_works_when_none_is_configured(emulator_settings: Any) -> None:
    from reelforge.emulator.app import create_emulator_app
    from tests.emulator.helpers import cached_render, make_settings

    app = create_emulator_app(make_settings(api_key=None), renderer=cached_render)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://e"
        ) as client:
            assert (
                await client.get("/v1/videos", headers={"authorization": "Bearer anything"})
            ).status_code == 200
            assert_error(await client.get("/v1/videos"), 401)
            assert (await client.get("/_emulator/ledger")).status_code == 200
    finally:
        app.state.emulator.close()


async def test_unknown_paths_and_methods(raw: httpx2.AsyncClient) -> None:
    error = assert_error(await raw.post("/v1/videoz"), 404)
    assert error["message"] == "Invalid URL (POST /v1/videoz)"
    assert_error(await raw.put("/v1/videos"), 405)
    assert_error(await raw.get("/v1/videos/characters/char_x"), 404, code="not_found")


async def test_control_endpoints_need_the_key_when_one_is_set(raw: httpx2.AsyncClient) -> None:
    assert_error(await raw.get("/_emulator/ledger", headers={"authorization": ""}), 401)
    assert (await raw.get("/_emulator/health")).json() == {"status": "ok"}


async def test_ledger_records_every_job_with_its_cost(raw: httpx2.AsyncClient) -> None:
    video = await completed(raw)
    pro = await raw.post(
        "/v1/videos", json={"prompt": PROMPT, "model": "sora-2-pro", "size": "1920x1080"}
    )
    await raw.delete(f"/v1/videos/{video['id']}")
    ledger = (await raw.get("/_emulator/ledger")).json()
    rows = {row["id"]: row for row in ledger["data"]}
    first = rows[video["id"]]
    assert first["cost"] == "0.40"
    assert first["status"] == "completed"
    assert first["deleted"] is True
    assert first["billable"] is True
    assert first["kind"] == "create"
    assert rows[pro.json()["id"]]["cost"] == "2.80"  # 4 s x $0.70 at 1080p
    assert ledger["count"] == 2


async def test_stats_count_calls_per_route(raw: httpx2.AsyncClient) -> None:
    await raw.post("/v1/videos", json={"prompt": PROMPT})
    await raw.get("/v1/videos")
    await raw.get("/v1/videos/video_x")
    await raw.get("/v1/nothing")
    stats = (await raw.get("/_emulator/stats")).json()
    assert stats["calls"]["videos.create"] == 1
    assert stats["calls"]["videos.list"] == 1
    assert stats["statuses"]["videos.retrieve"] == {"404": 1}
    assert stats["calls"]["unmatched"] == 1
    assert stats["state"]["jobs"] == 1


async def test_reset_forgets_everything(raw: httpx2.AsyncClient) -> None:
    created = (await raw.post("/v1/videos", json={"prompt": f"{PROMPT} [[latency=30]]"})).json()
    await raw.put("/_emulator/faults", json={"failure_rate": 1})
    assert (await raw.post("/_emulator/reset")).json() == {"reset": True}
    assert (await raw.get(f"/v1/videos/{created['id']}")).status_code == 404
    assert (await raw.get("/_emulator/ledger")).json()["data"] == []
    assert (await raw.get("/_emulator/faults")).json()["failure_rate"] == 0
    assert (await raw.get("/_emulator/stats")).json()["calls"] == {"videos.retrieve": 1}


async def test_expiry_and_eviction_follow_the_clock(raw: httpx2.AsyncClient) -> None:
    video = await completed(raw)
    assert video["expires_at"] == video["completed_at"] + 3600
    url = f"/v1/videos/{video['id']}/content"
    assert (await raw.get(url)).status_code == 200
    moved = (await raw.post("/_emulator/clock", json={"advance_seconds": 3601})).json()
    assert moved["evicted"] == 0
    assert_error(await raw.get(url), 400, code="video_expired")
    assert (await raw.get(f"/v1/videos/{video['id']}")).json()["status"] == "completed"
    moved = (await raw.post("/_emulator/clock", json={"advance_seconds": 3600})).json()
    assert moved["evicted"] == 1
    assert_error(await raw.get(f"/v1/videos/{video['id']}"), 404)
    rows = (await raw.get("/_emulator/ledger")).json()["data"]
    assert rows[0]["evicted"] is True
    assert rows[0]["deleted"] is False
    assert_error(await raw.post("/_emulator/clock", json={"advance_seconds": -1}), 400)


async def test_faults_endpoint_validates(raw: httpx2.AsyncClient) -> None:
    assert_error(await raw.put("/_emulator/faults", json={"failure_rate": 2}), 400)
    assert_error(await raw.put("/_emulator/faults", json={"nonsense": 1}), 400)
    assert_error(await raw.put("/_emulator/faults", json={"error_status": 404}), 400)
    assert_error(
        await raw.put(
            "/_emulator/faults", content=b"{", headers={"content-type": "application/json"}
        ),
        400,
    )
    current = (await raw.put("/_emulator/faults", json={"latency_seconds": 0.5})).json()
    assert current["latency_seconds"] == 0.5


async def test_prompt_is_echoed_with_tags_but_rendered_without(
    raw: httpx2.AsyncClient, emulator: Emulator
) -> None:
    response = await raw.post(
        "/v1/videos", json={"prompt": "[[latency=0]] a   calm [[ttl=60]] sea"}
    )
    video = response.json()
    assert video["prompt"] == "[[latency=0]] a   calm [[ttl=60]] sea"
    job = emulator.store.get(video["id"])
    assert job is not None
    assert job.spec.prompt == "a calm sea"
    done = await wait_done(raw, video["id"])
    assert done["expires_at"] == done["completed_at"] + 60


async def test_json_body_round_trips_unicode(raw: httpx2.AsyncClient) -> None:
    prompt = "un café au bord de la mer 🌊"
    response = await raw.post(
        "/v1/videos",
        content=json.dumps({"prompt": prompt}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.json()["prompt"] == prompt


async def test_image_urls_are_fetched_when_enabled() -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from reelforge.emulator.app import create_emulator_app
    from reelforge.emulator.server import running
    from tests.emulator.helpers import API_KEY, cached_render, make_settings

    picture = image(720, 1280)

    async def serve_picture(request: Any) -> Response:
        return Response(picture, media_type="image/png")

    images = Starlette(routes=[Route("/ref.png", serve_picture)])
    app = create_emulator_app(make_settings(fetch_image_urls=True), renderer=cached_render)
    try:
        with running(images) as host:
            async with httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app),
                base_url="http://e",
                headers={"authorization": f"Bearer {API_KEY}"},
            ) as client:
                body = {"prompt": PROMPT, "input_reference": {"image_url": f"{host.root}/ref.png"}}
                response = await client.post("/v1/videos", json=body)
                assert response.status_code == 200, response.text
                job = app.state.emulator.store.get(response.json()["id"])
                assert job.spec.reference_image == picture
                missing = {"prompt": PROMPT, "input_reference": {"image_url": f"{host.root}/x"}}
                error = assert_error(await client.post("/v1/videos", json=missing), 400)
                assert error["param"] == "input_reference.image_url"
    finally:
        app.state.emulator.close()
