"""Archived files sent from local storage: signed URLs, Range (one and several), If-Range, ETag,
HEAD, and the refusals of a bad or expired signed URL."""

from __future__ import annotations

import email.parser
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import Variant
from reelforge.services.links import EXPIRY_STEP, FileLinks
from tests.support.api import Caller, MakeCaller, archive, runtime_of

pytestmark = pytest.mark.anyio

VIDEO = bytes(range(256)) * 4096  # 1 MiB: ranges inside it, and the one-read limit at its end
ASSETS = {"video": VIDEO, "thumbnail": b"RIFF....WEBP", "spritesheet": b"\xff\xd8\xff jpeg"}


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


async def completed(app: FastAPI, caller: Caller) -> dict[str, Any]:
    response = await caller.client.post("/api/videos", json={"prompt": "a fox"})
    assert response.status_code == 201, response.text
    await archive(runtime_of(app), response.json()["data"]["id"], ASSETS)
    video: dict[str, Any] = (
        await caller.client.get(f"/api/videos/{response.json()['data']['id']}")
    ).json()["data"]
    return video


@pytest.fixture
async def paths(app: FastAPI, ada: Caller) -> dict[str, str]:
    """The same video by its signed URL, by /api with a key, by /v1 with a key."""
    video = await completed(app, ada)
    return {
        "signed": video["file_url"],
        "api": f"/api/videos/{video['id']}/download",
        "v1": f"/v1/videos/{video['id']}/content",
    }


ROUTES = ["signed", "api", "v1"]


async def test_the_signed_url_needs_no_credential(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)

    response = await client.get(video["file_url"])
    thumbnail = await client.get(video["downloads"]["thumbnail"])

    assert response.status_code == 200
    assert response.content == VIDEO
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(len(VIDEO))
    assert f'filename="{video["id"]}.mp4"' in response.headers["content-disposition"]
    assert response.headers["accept-ranges"] == "bytes"
    assert (thumbnail.headers["content-type"], thumbnail.content) == ("image/webp", b"RIFF....WEBP")
    expires = int(parse_qs(urlsplit(video["file_url"]).query)["expires"][0])
    max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= expires - utcnow().timestamp() + 1


async def test_a_signed_url_is_the_same_within_its_expiry_step(app: FastAPI) -> None:
    links = runtime_of(app).links
    start = utcnow().replace(minute=0, second=1, microsecond=0)

    first = links.url("video_1", Variant.VIDEO, now=start)
    later = links.url("video_1", Variant.VIDEO, now=start + timedelta(minutes=8))
    next_step = links.url("video_1", Variant.VIDEO, now=start + EXPIRY_STEP)

    assert first == later != next_step
    expires = int(parse_qs(urlsplit(first).query)["expires"][0])
    assert expires % int(EXPIRY_STEP.total_seconds()) == 0
    ttl = timedelta(minutes=runtime_of(app).settings.signed_url_ttl_minutes)
    assert (start + ttl).timestamp() <= expires < (start + ttl + EXPIRY_STEP).timestamp()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda url: url.replace("signature=", "signature=x"), "signature"),
        (lambda url: url.split("&signature=")[0], "signature"),
        (lambda url: url.replace("/video?", "/thumbnail?"), "signature"),
        (lambda url: url.replace("expires=", "expires=1"), "signature"),
        (lambda url: url.replace("expires=", "expires=x"), "expires"),
        (lambda url: url.split("?")[0], "expires"),
    ],
    ids=["bad signature", "no signature", "other variant", "other expiry", "bad expiry", "bare"],
)
async def test_a_changed_signed_url_is_refused(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient, change: Any, field: str
) -> None:
    video = await completed(app, ada)

    response = await client.get(change(video["file_url"]))

    assert response.status_code == 403, response.text
    assert response.json()["field"] == field


async def test_a_variant_that_does_not_exist_is_not_found(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)
    url = video["file_url"].replace("/video?", "/poster?")

    response = await client.get(url)

    assert response.status_code == 404, response.text
    assert "thumbnail" in response.json()["error"]


async def test_a_signed_url_takes_only_get_and_head(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)

    response = await client.post(video["file_url"])

    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["code"] == "method_not_allowed"


async def test_an_expired_signed_url_is_refused(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)
    old = runtime_of(app).links.url(video["id"], Variant.VIDEO, now=utcnow() - timedelta(days=1))

    response = await client.get(old)

    assert response.status_code == 403
    assert response.json()["field"] == "expires"
    assert "expired" in response.json()["error"]


async def test_another_servers_secret_signs_nothing_here(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)
    other = FileLinks("another secret key, at least thirty-two chars", timedelta(hours=1))

    response = await client.get(other.url(video["id"], Variant.VIDEO))

    assert response.status_code == 403
    assert response.json()["field"] == "signature"


async def test_a_deleted_videos_signed_url_finds_nothing(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient
) -> None:
    video = await completed(app, ada)
    for variant in Variant:
        await runtime_of(app).storage.delete(f"videos/{video['id']}/{variant}.{variant.extension}")

    response = await client.get(video["file_url"])

    assert response.status_code == 404, response.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(VIDEO) - 1),
        ("bytes=-10", len(VIDEO) - 10, len(VIDEO) - 1),
        ("bytes=5-999999999", 5, len(VIDEO) - 1),
        ("bytes=262144-524287", 262144, 524287),
    ],
)
async def test_one_range_answers_206(
    ada: Caller, paths: dict[str, str], route: str, header: str, start: int, end: int
) -> None:
    response = await ada.client.get(paths[route], headers={"Range": header})

    assert response.status_code == 206
    assert response.content == VIDEO[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(VIDEO)}"
    assert response.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("route", ROUTES)
async def test_several_ranges_answer_multipart_byteranges(
    ada: Caller, paths: dict[str, str], route: str
) -> None:
    response = await ada.client.get(paths[route], headers={"Range": "bytes=0-9, 500-599, -4"})

    assert response.status_code == 206
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert int(response.headers["content-length"]) == len(response.content)
    message = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response.content
    )
    parts = [(p["Content-Range"], p.get_payload(decode=True)) for p in message.get_payload()]
    size = len(VIDEO)
    assert parts == [
        (f"bytes 0-9/{size}", VIDEO[0:10]),
        (f"bytes 500-599/{size}", VIDEO[500:600]),
        (f"bytes {size - 4}-{size - 1}/{size}", VIDEO[-4:]),
    ]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("header", [f"bytes={len(VIDEO)}-", "bytes=2000000-, 3000000-3000001"])
async def test_a_range_past_the_end_answers_416(
    ada: Caller, paths: dict[str, str], route: str, header: str
) -> None:
    response = await ada.client.get(paths[route], headers={"Range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(VIDEO)}"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("header", ["bytes=abc", "items=0-5", "bytes=5", "bytes=--1"])
async def test_a_range_not_understood_sends_the_whole_file(
    ada: Caller, paths: dict[str, str], route: str, header: str
) -> None:
    response = await ada.client.get(paths[route], headers={"Range": header})

    assert (response.status_code, response.content) == (200, VIDEO)


@pytest.mark.parametrize("route", ROUTES)
async def test_if_range_and_if_none_match_follow_the_etag(
    ada: Caller, paths: dict[str, str], route: str
) -> None:
    whole = await ada.client.get(paths[route])
    etag = whole.headers["etag"]

    same = await ada.client.get(paths[route], headers={"Range": "bytes=0-3", "If-Range": etag})
    changed = await ada.client.get(
        paths[route], headers={"Range": "bytes=0-3", "If-Range": '"something-else"'}
    )
    cached = await ada.client.get(paths[route], headers={"If-None-Match": etag})

    assert (same.status_code, same.content) == (206, VIDEO[:4])
    assert (changed.status_code, changed.content) == (200, VIDEO)
    assert cached.status_code == 304
    assert cached.content == b""
    if route != "signed":
        assert etag == f'"{hashlib.sha256(VIDEO).hexdigest()}"'


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("ranged", [False, True])
async def test_head_answers_the_headers_alone(
    ada: Caller, paths: dict[str, str], route: str, ranged: bool
) -> None:
    headers = {"Range": "bytes=10-19"} if ranged else {}

    response = await ada.client.head(paths[route], headers=headers)

    assert response.status_code == (206 if ranged else 200)
    assert response.content == b""
    assert response.headers["content-length"] == ("10" if ranged else str(len(VIDEO)))
    assert response.headers["etag"]


async def test_another_users_video_is_not_found_by_head(
    app: FastAPI, ada: Caller, make_caller: MakeCaller, paths: dict[str, str]
) -> None:
    bob = await make_caller("bob@example.org")

    for route in ("api", "v1"):
        assert (await bob.client.head(paths[route])).status_code == 404


async def test_a_whole_file_is_handed_to_the_server_by_pathsend(app: FastAPI, ada: Caller) -> None:
    """Under a server offering `http.response.pathsend` (granian does), the bytes of a whole
    file never pass through Python: the app names the file and the server sends it."""
    video = await completed(app, ada)
    path, _, query = video["file_url"].partition("?")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"reelforge.test")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "extensions": {"http.response.pathsend": {}},
    }
    await app(scope, receive, send)

    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[0]["status"] == 200
    assert Path(sent[1]["path"]).read_bytes() == VIDEO


@pytest.mark.parametrize("route", ["signed", "api"])
async def test_a_range_the_page_cache_lacks_is_read_all_the_same(
    app: FastAPI, ada: Caller, paths: dict[str, str], route: str
) -> None:
    """A range is read inline only from the page cache; one that needs the disk is read on a
    worker thread (here: after the file's cached pages are dropped)."""
    video_id = paths["api"].split("/")[3]
    path = runtime_of(app).storage.local_path(f"videos/{video_id}/video.mp4")
    assert path is not None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)

    response = await ada.client.get(paths[route], headers={"Range": "bytes=300000-562143"})

    assert (response.status_code, response.content) == (206, VIDEO[300000:562144])
