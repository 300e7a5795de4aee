"""The guide's /api/videos routes over HTTP: envelope, status codes, errors, content delivery."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from reelforge.domain.accounts import Role
from tests.support.api import Caller, MakeCaller, archive, outcome, runtime_of

pytestmark = pytest.mark.anyio

VIDEO = bytes(range(256)) * 400  # 100 KiB stand-in for an MP4
ASSETS = {"video": VIDEO, "thumbnail": b"RIFF....WEBP", "spritesheet": b"\xff\xd8\xff jpeg"}


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


async def create(caller: Caller, **body: Any) -> dict[str, Any]:
    response = await caller.client.post("/api/videos", json={"prompt": "a fox", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def completed(app: FastAPI, caller: Caller) -> dict[str, Any]:
    video = await create(caller)
    await archive(runtime_of(app), video["id"], ASSETS)
    return video


async def test_create_answers_201_in_the_envelope(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos", json={"prompt": "a fox", "size": "1280x720", "seconds": "8"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    video = body["data"]
    assert (video["object"], video["status"], video["quality"]) == ("video", "queued", "standard")
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2", "1280x720", "8")
    assert video["cost"] == {"currency": "USD", "estimate": "0.80", "final": None}
    assert video["downloads"] == {}
    assert (video["file_url"], video["error"]) == (None, None)
    # Unix seconds, as the guide's VideoJob and the protocol carry times.
    assert type(video["created_at"]) is int
    assert abs(video["created_at"] - time.time()) < 3600
    assert (video["completed_at"], video["expires_at"], video["archived_at"]) == (None, None, None)
    assert response.headers["RateLimit-Limit"] == "30"


async def test_create_takes_multipart_with_a_reference_image(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos",
        data={"prompt": "a fox", "size": "1280x720"},
        files={"input_reference": ("first.png", png(1280, 720), "image/png")},
    )

    assert response.status_code == 201, response.text


async def test_create_takes_a_data_url_reference(ada: Caller) -> None:
    image = "data:image/png;base64," + base64.b64encode(png(720, 1280)).decode()

    video = await create(ada, input_reference=image)

    assert video["size"] == "720x1280"


@pytest.mark.parametrize(
    ("body", "status", "field", "wording"),
    [
        ({}, 400, "prompt", "required"),
        ({"prompt": " "}, 400, "prompt", "blank"),
        ({"prompt": "x" * 1001}, 400, "prompt", "at most 1000"),
        ({"prompt": "fox", "model": "veo"}, 400, "model", "Supported values are"),
        ({"prompt": "fox", "size": "1x1"}, 400, "size", "'720x1280' and '1280x720'"),
        ({"prompt": "fox", "seconds": 7}, 400, "seconds", "'4', '8'"),
        ({"prompt": "fox", "input_reference": "http://x"}, 400, "input_reference", "data: URL"),
        ({"prompt": 5}, 400, "prompt", "string"),
        ({"prompt": "fox", "quality": "ultra"}, 400, "quality", "'standard' and 'high'"),
        ({"prompt": "fox", "quality": 2}, 400, "quality", "string"),
        ({"prompt": "fox", "model": "sora-2", "quality": "high"}, 400, "quality", "standard"),
        ({"prompt": "fox", "colour": "red"}, 400, "colour", "unknown field"),
        ({"prompt": "fox", "Prompt": "fox"}, 400, "Prompt", "unknown field"),
    ],
)
async def test_bad_creates_name_the_field(
    ada: Caller, body: dict[str, Any], status: int, field: str, wording: str
) -> None:
    response = await ada.client.post("/api/videos", json=body)

    assert response.status_code == status, response.text
    error = response.json()
    assert error["success"] is False
    assert error["field"] == field
    # `error` is the text a page shows as it is; the code and the field sit beside it.
    assert error["error"].startswith(f"{field}: ")
    assert wording in error["error"]
    assert error["code"] in ("invalid_value", "unknown_parameter")
    assert (await ada.client.get("/api/videos")).json()["data"] == []


@pytest.mark.parametrize(
    ("fields", "unknown"),
    [
        ({"prompt": "a fox", "colour": "red"}, "colour"),
        ({"prompt": "a fox", "input_reference[detail]": "high"}, "input_reference[detail]"),
    ],
)
async def test_multipart_creates_refuse_unknown_fields(
    ada: Caller, fields: dict[str, str], unknown: str
) -> None:
    response = await ada.client.post(
        "/api/videos", data=fields, files={"input_reference": ("f.png", png(720, 1280))}
    )

    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["field"]) == ("unknown_parameter", unknown)
    assert (await ada.client.get("/api/videos")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "model", "quality", "estimate"),
    [
        ({"quality": "high"}, "sora-2-pro", "high", "1.20"),
        ({"quality": "standard"}, "sora-2", "standard", "0.40"),
        ({"model": "sora-2-pro"}, "sora-2-pro", "high", "1.20"),
        (
            {"model": "sora-2-pro", "quality": "high", "size": "1920x1080"},
            "sora-2-pro",
            "high",
            "2.80",
        ),
        ({}, "sora-2", "standard", "0.40"),
    ],
)
async def test_quality_chooses_the_model_tier(
    ada: Caller, body: dict[str, str], model: str, quality: str, estimate: str
) -> None:
    video = await create(ada, **body)

    assert (video["model"], video["quality"], video["cost"]["estimate"]) == (
        model,
        quality,
        estimate,
    )
    again = (await ada.client.get(f"/api/videos/{video['id']}")).json()["data"]
    assert (again["model"], again["quality"]) == (model, quality)


async def test_multipart_takes_quality(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos",
        data={"prompt": "a fox", "quality": "high", "size": "1280x720"},
        files={"input_reference": ("first.png", png(1280, 720), "image/png")},
    )

    assert response.status_code == 201, response.text
    assert (response.json()["data"]["model"], response.json()["data"]["quality"]) == (
        "sora-2-pro",
        "high",
    )


async def test_malformed_json_is_a_clear_400(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["success"] is False


async def test_wrong_size_reference_names_the_expected_size(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos",
        data={"prompt": "a fox"},
        files={"input_reference": ("first.png", png(64, 64), "image/png")},
    )

    assert response.status_code == 400
    assert "720x1280" in response.json()["error"]


async def test_estimate_prices_without_creating(ada: Caller) -> None:
    response = await ada.client.post(
        "/api/videos/estimate", json={"prompt": "fox", "quality": "high", "size": "1920x1080"}
    )

    assert response.status_code == 200
    assert response.json()["data"] == {
        "provider": "emulator",
        "model": "sora-2-pro",
        "quality": "high",
        "size": "1920x1080",
        "seconds": "4",
        "cost": "2.80",
        "currency": "USD",
    }
    assert (await ada.client.get("/api/videos")).json()["data"] == []


async def test_list_filters_and_paginates_with_a_cursor(ada: Caller) -> None:
    made = [await create(ada, prompt=f"clip {i}") for i in range(5)]

    first = (await ada.client.get("/api/videos", params={"limit": 2})).json()
    cursor = first["pagination"]["next_cursor"]
    rest = (await ada.client.get("/api/videos", params={"limit": 10, "cursor": cursor})).json()

    ids = [v["id"] for v in first["data"] + rest["data"]]
    assert ids == [v["id"] for v in reversed(made)]
    assert first["pagination"] == {
        "limit": 2,
        "offset": 0,
        "hasMore": True,
        "has_more": True,
        "next_cursor": made[3]["id"],
    }
    assert rest["pagination"] == {
        "limit": 10,
        "offset": 0,
        "hasMore": False,
        "has_more": False,
        "next_cursor": None,
    }
    found = (await ada.client.get("/api/videos", params={"q": "clip 3"})).json()["data"]
    assert [v["id"] for v in found] == [made[3]["id"]]
    bad = await ada.client.get("/api/videos", params={"limit": 500})
    assert bad.status_code == 422
    assert bad.json()["field"] == "limit"


async def test_list_pages_by_offset_as_the_guide_does(ada: Caller) -> None:
    made = [(await create(ada, prompt=f"clip {i}"))["id"] for i in range(5)]
    newest_first = list(reversed(made))

    pages = [
        (await ada.client.get("/api/videos", params={"limit": 2, "offset": offset})).json()
        for offset in (0, 2, 4, 6)
    ]

    assert [[v["id"] for v in page["data"]] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
        [],
    ]
    assert [page["pagination"]["hasMore"] for page in pages] == [True, True, False, False]
    assert [page["pagination"]["offset"] for page in pages] == [0, 2, 4, 6]
    after_cursor = await ada.client.get(
        "/api/videos", params={"limit": 2, "offset": 1, "cursor": newest_first[0]}
    )
    assert [v["id"] for v in after_cursor.json()["data"]] == newest_first[2:4]
    oldest = await ada.client.get("/api/videos", params={"offset": 1, "order": "asc"})
    assert [v["id"] for v in oldest.json()["data"]] == made[1:]


@pytest.mark.parametrize("offset", ["-1", "x", str(2**63)])
async def test_a_bad_offset_names_the_field(ada: Caller, offset: str) -> None:
    response = await ada.client.get("/api/videos", params={"offset": offset})

    assert response.status_code == 422, response.text
    assert (response.json()["field"], response.json()["code"]) == ("offset", "invalid_request")
    assert response.json()["error"].startswith("offset: ")


async def test_a_cancelled_video_is_failed_with_code_cancelled(ada: Caller) -> None:
    video = await create(ada)
    kept = await create(ada, prompt="kept")

    cancelled = (await ada.client.post(f"/api/videos/{video['id']}/cancel")).json()["data"]

    assert outcome(cancelled) == ("failed", "cancelled")
    assert cancelled["error"]["message"]
    assert type(cancelled["completed_at"]) in (int, type(None))
    failed = await ada.client.get("/api/videos", params={"status": "failed"})
    assert [v["id"] for v in failed.json()["data"]] == [video["id"]]
    queued = await ada.client.get("/api/videos", params={"status": "queued"})
    assert [v["id"] for v in queued.json()["data"]] == [kept["id"]]


async def test_get_cancel_events_and_delete(ada: Caller) -> None:
    video = await create(ada)
    path = f"/api/videos/{video['id']}"

    assert (await ada.client.get(path)).json()["data"]["id"] == video["id"]
    cancelled = await ada.client.post(f"{path}/cancel")
    assert outcome(cancelled.json()["data"]) == ("failed", "cancelled")
    events = (await ada.client.get(f"{path}/events")).json()["data"]
    assert [e["kind"] for e in events] == ["created", "cancelled"]
    assert (await ada.client.delete(path)).json()["data"] == {"id": video["id"], "deleted": True}
    assert (await ada.client.delete(path)).status_code == 200
    assert (await ada.client.get(path)).status_code == 404


async def test_download_streams_with_etag_and_disposition(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)
    path = f"/api/videos/{video['id']}/download"

    response = await ada.client.get(path)

    assert response.status_code == 200
    assert response.content == VIDEO
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(len(VIDEO))
    assert response.headers["etag"] == f'"{hashlib.sha256(VIDEO).hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert f'filename="{video["id"]}.mp4"' in response.headers["content-disposition"]
    again = await ada.client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    thumbnail = await ada.client.get(path, params={"variant": "thumbnail"})
    assert thumbnail.headers["content-type"] == "image/webp"
    assert thumbnail.content == ASSETS["thumbnail"]
    listed = (await ada.client.get(f"/api/videos/{video['id']}")).json()["data"]
    assert set(listed["downloads"]) == {"video", "thumbnail", "spritesheet"}
    file_url = listed["file_url"]
    assert file_url.startswith(f"/api/files/{video['id']}/video?expires=")
    assert listed["downloads"]["video"] == file_url
    # The signed URL alone, with no credential, gets the same bytes.
    signed = await client.get(file_url)
    assert (signed.status_code, signed.content) == (200, VIDEO)
    assert listed["status"] == "completed"
    assert listed["created_at"] <= listed["completed_at"] <= listed["archived_at"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(VIDEO) - 1),
        ("bytes=-10", len(VIDEO) - 10, len(VIDEO) - 1),
        ("bytes=5-999999999", 5, len(VIDEO) - 1),
    ],
)
async def test_ranges_answer_206(
    app: FastAPI, ada: Caller, header: str, start: int, end: int
) -> None:
    video = await completed(app, ada)

    response = await ada.client.get(
        f"/api/videos/{video['id']}/download", headers={"Range": header}
    )

    assert response.status_code == 206
    assert response.content == VIDEO[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(VIDEO)}"


async def test_unsatisfiable_range_answers_416(app: FastAPI, ada: Caller) -> None:
    video = await completed(app, ada)

    response = await ada.client.get(
        f"/api/videos/{video['id']}/download", headers={"Range": f"bytes={len(VIDEO)}-"}
    )

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(VIDEO)}"


HUGE = "9" * 5000  # past Python's 4,300-digit limit for int(str)


@pytest.mark.parametrize(
    ("header", "status", "start", "end"),
    [
        (f"bytes={HUGE}-", 416, None, None),
        (f"bytes=5-{HUGE}", 206, 5, len(VIDEO) - 1),
        (f"bytes=-{HUGE}", 206, 0, len(VIDEO) - 1),
    ],
)
async def test_ranges_of_thousands_of_digits_are_answered_not_a_500(
    app: FastAPI, ada: Caller, header: str, status: int, start: int | None, end: int | None
) -> None:
    video = await completed(app, ada)

    response = await ada.client.get(
        f"/api/videos/{video['id']}/download", headers={"Range": header}
    )

    assert response.status_code == status, response.text
    if start is not None and end is not None:
        assert response.content == VIDEO[start : end + 1]


async def test_download_before_completion_is_a_conflict(ada: Caller) -> None:
    video = await create(ada)

    response = await ada.client.get(f"/api/videos/{video['id']}/download")

    assert response.status_code == 409
    assert "completed" in response.json()["error"]


async def test_remix_of_a_completed_video(app: FastAPI, ada: Caller) -> None:
    parent = await completed(app, ada)

    response = await ada.client.post(
        f"/api/videos/{parent['id']}/remix", json={"prompt": "at night"}
    )

    assert response.status_code == 201
    assert response.json()["data"]["remixed_from_video_id"] == parent["id"]
    assert response.json()["data"]["quality"] == "standard"


async def test_remix_refuses_an_unknown_field(app: FastAPI, ada: Caller) -> None:
    parent = await completed(app, ada)

    response = await ada.client.post(
        f"/api/videos/{parent['id']}/remix", json={"prompt": "at night", "quality": "high"}
    )

    assert response.status_code == 400, response.text
    assert response.json() == {
        "success": False,
        "error": "quality: unknown field",
        "code": "unknown_parameter",
        "field": "quality",
    }
    assert len((await ada.client.get("/api/videos")).json()["data"]) == 1


async def test_idempotency_key_replays_and_conflicts(ada: Caller) -> None:
    headers = {"Idempotency-Key": "abc"}
    first = await ada.client.post("/api/videos", json={"prompt": "fox"}, headers=headers)
    again = await ada.client.post("/api/videos", json={"prompt": "fox"}, headers=headers)
    other = await ada.client.post("/api/videos", json={"prompt": "owl"}, headers=headers)

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert other.json()["field"] == "Idempotency-Key"


async def test_quota_exhaustion_answers_429_that_says_not_to_retry(
    ada: Caller, make_caller: MakeCaller
) -> None:
    root = await make_caller("root@example.org", Role.ADMIN)
    put = await root.client.put(
        f"/api/admin/users/{ada.account.id}/quota",
        json={"max_videos": 1, "period_days": 7, "monthly_budget": None},
    )
    assert put.status_code == 200, put.text
    await create(ada)

    refused = await ada.client.post("/api/videos", json={"prompt": "again"})

    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    # Only the next period ends it: no Retry-After promising a wait of days.
    assert refused.headers["x-should-retry"] == "false"
    assert "Retry-After" not in refused.headers
    usage = (await ada.client.get("/api/me/usage")).json()["data"]
    assert (usage["videos_used"], usage["videos_left"]) == (1, 0)


async def test_non_admins_cannot_use_admin_routes(ada: Caller) -> None:
    response = await ada.client.get("/api/admin/users")

    assert response.status_code == 403


async def test_anonymous_callers_get_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/videos")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["success"] is False


async def test_the_schema_documents_the_shapes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    models = schema["components"]["schemas"]

    error = models["ErrorEnvelope"]
    assert error["properties"]["error"]["type"] == "string"
    assert set(error["required"]) == {"success", "error", "code", "field"}
    create = schema["paths"]["/api/videos"]["post"]
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    video = models["VideoOut"]["properties"]
    assert video["created_at"]["type"] == "integer"
    assert video["status"]["enum"] == ["queued", "in_progress", "completed", "failed"]
    assert {"object", "quality", "expires_at", "file_url"} <= set(video)
    assert set(models["Pagination"]["properties"]) >= {"limit", "offset", "hasMore"}
    body = create["requestBody"]["content"]
    assert body["application/json"]["schema"]["additionalProperties"] is False
    assert body["multipart/form-data"]["schema"]["additionalProperties"] is False
    assert "quality" in body["multipart/form-data"]["schema"]["properties"]
