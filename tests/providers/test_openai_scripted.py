"""OpenAIProvider against a scripted upstream: wire format, error mapping, parsing, streaming."""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import httpx2
import pytest

from reelforge.domain.upstream import (
    CreateRequest,
    ImageBytes,
    ImageUrl,
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamStatus,
    Variant,
)
from reelforge.providers.base import ContentStream, Provider

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx2.Request], httpx2.Response]
# `scripted(handler, **provider_options)` -> Scripted(provider, requests) (see conftest.py).
Make = Callable[..., Any]
REQUEST = CreateRequest(prompt="a cat", model="sora-2", size="720x1280", seconds="4")
VIDEO_ID = "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5"


def video_json(**overrides: Any) -> dict[str, Any]:
    """A protocol-exact `Video` object (§2.1), queued unless overridden."""
    body: dict[str, Any] = {
        "id": "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5",
        "object": "video",
        "created_at": 1758941485,
        "status": "queued",
        "completed_at": None,
        "error": None,
        "expires_at": None,
        "model": "sora-2",
        "progress": 0,
        "prompt": "a cat",
        "remixed_from_video_id": None,
        "seconds": "4",
        "size": "720x1280",
    }
    body.update(overrides)
    return body


def answer(status: int, body: object, **headers: str) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body, headers=headers)

    return handler


def error(
    status: int, message: str, *, code: str | None = None, param: str | None = None, **headers: str
) -> Handler:
    inner = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return answer(status, {"error": inner}, **headers)


def raising(exc: Exception) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return handler


async def test_satisfies_the_provider_protocol(scripted: Make) -> None:
    provider = scripted(answer(200, video_json())).provider
    assert isinstance(provider, Provider)
    assert provider.name == "openai"
    assert provider.spec.name == "openai"


# --- what goes on the wire -------------------------------------------------------------------


async def test_create_is_the_sdks_multipart_request(scripted: Make) -> None:
    up = scripted(answer(200, video_json(), **{"openai-poll-after-ms": "250"}))
    video = await up.provider.create(REQUEST)
    [request] = up.requests
    assert (request.method, request.url.path) == ("POST", "/v1/videos")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.content.decode()
    for name, value in (("prompt", "a cat"), ("model", "sora-2"), ("seconds", "4")):
        assert f'name="{name}"\r\n\r\n{value}\r\n' in body
    assert "input_reference" not in body
    assert video.status is UpstreamStatus.QUEUED
    assert video.poll_after_ms == 250


async def test_create_uploads_image_bytes_as_a_file_part(scripted: Make) -> None:
    up = scripted(answer(200, video_json()))
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    await up.provider.create(
        CreateRequest(
            prompt="p",
            model="sora-2",
            size="720x1280",
            seconds="8",
            input_reference=ImageBytes(png, "image/png", "first.png"),
        )
    )
    body = up.requests[0].content
    assert b'name="input_reference"; filename="first.png"\r\nContent-Type: image/png' in body
    assert png in body


async def test_create_with_image_url_posts_json(scripted: Make) -> None:
    up = scripted(answer(200, video_json()))
    ref = ImageUrl("data:image/png;base64,iVBORw0KGgo=")
    await up.provider.create(
        CreateRequest(
            prompt="p", model="sora-2-pro", size="1920x1080", seconds="20", input_reference=ref
        )
    )
    [request] = up.requests
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "prompt": "p",
        "model": "sora-2-pro",
        "size": "1920x1080",
        "seconds": "20",
        "input_reference": {"image_url": ref.url},
    }


async def test_remix_edit_extend_wire_format(scripted: Make) -> None:
    up = scripted(answer(200, video_json(remixed_from_video_id="video_src")))
    remixed = await up.provider.remix("video_src", "again")
    await up.provider.edit("video_src", "bluer")
    await up.provider.extend("video_src", "and then", "8")
    remix, edit, extend = up.requests
    assert (remix.url.path, json.loads(remix.content)) == (
        "/v1/videos/video_src/remix",
        {"prompt": "again"},
    )
    assert (edit.url.path, json.loads(edit.content)) == (
        "/v1/videos/edits",
        {"video": {"id": "video_src"}, "prompt": "bluer"},
    )
    assert (extend.url.path, json.loads(extend.content)) == (
        "/v1/videos/extensions",
        {"video": {"id": "video_src"}, "prompt": "and then", "seconds": "8"},
    )
    assert remixed.remixed_from_video_id == "video_src"


async def test_ids_are_path_encoded(scripted: Make) -> None:
    up = scripted(answer(200, video_json()))
    await up.provider.retrieve("../admin")
    assert up.requests[0].url.raw_path == b"/v1/videos/..%2Fadmin"


async def test_an_empty_id_is_rejected_before_any_request(scripted: Make) -> None:
    up = scripted(answer(200, video_json()))
    with pytest.raises(ProviderRejected) as caught:
        await up.provider.retrieve("")
    assert caught.value.param == "video_id"
    assert up.requests == []


async def test_list_passes_cursor_and_reads_the_envelope(scripted: Make) -> None:
    first, second = video_json(id="video_a"), video_json(id="video_b")
    envelope = {
        "object": "list",
        "data": [first, second],
        "first_id": "video_a",
        "last_id": "video_b",
        "has_more": True,
    }
    up = scripted(answer(200, envelope))
    page = await up.provider.list(after="video_0", limit=2, order="asc")
    assert dict(up.requests[0].url.params) == {"after": "video_0", "limit": "2", "order": "asc"}
    assert [item.id for item in page.items] == ["video_a", "video_b"]
    assert (page.first_id, page.last_id, page.has_more) == ("video_a", "video_b", True)


async def test_delete_requires_confirmation(scripted: Make) -> None:
    ok = scripted(answer(200, {"id": VIDEO_ID, "object": "video.deleted", "deleted": True}))
    await ok.provider.delete(VIDEO_ID)
    assert ok.requests[0].method == "DELETE"
    refused = scripted(answer(200, {"id": VIDEO_ID, "object": "video.deleted", "deleted": False}))
    with pytest.raises(ProviderProtocolError):
        await refused.provider.delete(VIDEO_ID)


async def test_check_is_one_cheap_list_call(scripted: Make) -> None:
    envelope: dict[str, Any] = {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    up = scripted(answer(200, envelope))
    await up.provider.check()
    assert dict(up.requests[0].url.params) == {"limit": "1", "order": "desc"}


# --- parsing what comes back -----------------------------------------------------------------


async def test_video_fields_become_domain_types(scripted: Make) -> None:
    done = video_json(
        status="completed",
        progress=100,
        completed_at=1758941545,
        expires_at=1758945145,
        size="1920x1080",
        seconds="16",
        model="sora-2-pro",
    )
    video = await scripted(answer(200, done)).provider.retrieve(VIDEO_ID)
    assert video.status is UpstreamStatus.COMPLETED
    assert video.is_terminal
    assert video.created_at == datetime(2025, 9, 27, 2, 51, 25, tzinfo=UTC)
    assert video.completed_at is not None
    assert video.completed_at.tzinfo is UTC
    assert video.expires_at == video.completed_at + timedelta(hours=1)
    assert (video.size, video.seconds, video.model) == ("1920x1080", "16", "sora-2-pro")
    assert video.poll_after_ms is None


async def test_failed_video_keeps_the_error(scripted: Make) -> None:
    failed = video_json(status="failed", error={"code": "moderation_blocked", "message": "no"})
    video = await scripted(answer(200, failed)).provider.retrieve(VIDEO_ID)
    assert (video.error_code, video.error_message) == ("moderation_blocked", "no")


async def test_tolerates_numeric_seconds_and_missing_progress(scripted: Make) -> None:
    body = video_json(seconds=8)
    del body["progress"]
    video = await scripted(answer(200, body)).provider.retrieve(VIDEO_ID)
    assert (video.seconds, video.progress) == ("8", 0)


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"<html>gateway</html>", "text/html", "expected a video object"),
        (b'{"id": "video_1"', "application/json", "invalid JSON"),
        (json.dumps(video_json(status="processing")).encode(), "application/json", "processing"),
        (json.dumps(video_json(id=None)).encode(), "application/json", "'id'"),
        (json.dumps(video_json(created_at="yesterday")).encode(), "application/json", "created"),
        (b"[1, 2]", "application/json", "expected a video object"),
    ],
)
async def test_unexpected_answers_are_protocol_errors(
    scripted: Make, body: bytes, content_type: str, fragment: str
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    with pytest.raises(ProviderProtocolError, match=fragment) as caught:
        await scripted(handler).provider.retrieve(VIDEO_ID)
    assert caught.value.retryable
    assert caught.value.outcome_unknown


async def test_a_list_without_data_is_a_protocol_error(scripted: Make) -> None:
    with pytest.raises(ProviderProtocolError, match="list envelope"):
        await scripted(answer(200, {"object": "list"})).provider.list()


# --- error mapping ---------------------------------------------------------------------------

STATUS_CASES = [
    (400, ProviderRejected, False, False),
    (401, ProviderAuthError, False, False),
    (403, ProviderAuthError, False, False),
    (404, ProviderNotFound, False, False),
    (408, ProviderUnavailable, True, False),
    (409, ProviderUnavailable, True, False),
    (413, ProviderRejected, False, False),
    (422, ProviderRejected, False, False),
    (429, ProviderRateLimited, True, False),
    (500, ProviderUnavailable, True, True),
    (502, ProviderUnavailable, True, True),
    (503, ProviderUnavailable, True, True),
]


@pytest.mark.parametrize(("status", "kind", "retryable", "unknown"), STATUS_CASES)
async def test_status_errors_keep_what_upstream_said(
    scripted: Make, status: int, kind: type[ProviderError], retryable: bool, unknown: bool
) -> None:
    handler = error(
        status,
        "Nope.",
        code="some_code",
        param="size",
        **{"x-request-id": "req_123", "retry-after-ms": "1500"},
    )
    with pytest.raises(kind) as caught:
        await scripted(handler).provider.create(REQUEST)
    exc = caught.value
    assert type(exc) is kind
    assert (exc.status, exc.code, exc.message, exc.param) == (status, "some_code", "Nope.", "size")
    assert (exc.retry_after, exc.request_id) == (1.5, "req_123")
    assert (exc.retryable, exc.outcome_unknown) == (retryable, unknown)
    assert str(exc) == f"{status} some_code: Nope. (param size)"


async def test_retry_after_in_seconds_and_as_a_date(scripted: Make) -> None:
    with pytest.raises(ProviderRateLimited) as caught:
        await scripted(error(429, "slow", **{"retry-after": "7"})).provider.retrieve(VIDEO_ID)
    assert caught.value.retry_after == 7.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(ProviderRateLimited) as caught:
        await scripted(error(429, "slow", **{"retry-after": when})).provider.retrieve(VIDEO_ID)
    assert caught.value.retry_after is not None
    assert 25 < caught.value.retry_after <= 30
    with pytest.raises(ProviderRateLimited) as caught:
        await scripted(error(429, "slow")).provider.retrieve(VIDEO_ID)
    assert caught.value.retry_after is None


async def test_a_non_json_error_body_becomes_the_message(scripted: Make) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(502, text="Bad Gateway from nginx")

    with pytest.raises(ProviderUnavailable) as caught:
        await scripted(handler).provider.retrieve(VIDEO_ID)
    assert (caught.value.status, caught.value.message) == (502, "Bad Gateway from nginx")
    assert caught.value.code is None


@pytest.mark.parametrize(
    ("exc", "kind", "unknown"),
    [
        (httpx2.ConnectError("refused"), ProviderUnavailable, False),
        (httpx2.ConnectTimeout("slow handshake"), ProviderUnavailable, False),
        (httpx2.ReadTimeout("no answer"), ProviderTimeout, True),
        (httpx2.ReadError("reset by peer"), ProviderTimeout, True),
        (httpx2.RemoteProtocolError("server hung up"), ProviderTimeout, True),
    ],
)
async def test_transport_failures(
    scripted: Make, exc: Exception, kind: type[ProviderError], unknown: bool
) -> None:
    up = scripted(raising(exc))
    with pytest.raises(kind) as caught:
        await up.provider.create(REQUEST)
    assert caught.value.status is None
    assert caught.value.retryable
    assert caught.value.outcome_unknown is unknown
    assert len(up.requests) == 1


@pytest.mark.parametrize("call", ["create", "retrieve", "list", "delete"])
async def test_the_sdk_never_retries(scripted: Make, call: str) -> None:
    up = scripted(error(503, "busy", **{"retry-after-ms": "1"}))
    provider = up.provider
    calls = {
        "create": lambda: provider.create(REQUEST),
        "retrieve": lambda: provider.retrieve(VIDEO_ID),
        "list": lambda: provider.list(),
        "delete": lambda: provider.delete(VIDEO_ID),
    }
    with pytest.raises(ProviderUnavailable):
        await calls[call]()
    assert len(up.requests) == 1


async def test_reads_may_opt_into_sdk_retries_but_creates_never(scripted: Make) -> None:
    calls = scripted(error(503, "busy", **{"retry-after-ms": "1"}), max_retries=2)
    with pytest.raises(ProviderUnavailable):
        await calls.provider.retrieve(VIDEO_ID)
    assert len(calls.requests) == 3
    calls.requests.clear()
    for start in (
        calls.provider.create(REQUEST),
        calls.provider.create(REQUEST.__class__("p", "sora-2", "720x1280", "4", ImageUrl("x"))),
        calls.provider.remix(VIDEO_ID, "p"),
        calls.provider.edit(VIDEO_ID, "p"),
        calls.provider.extend(VIDEO_ID, "p", "4"),
    ):
        with pytest.raises(ProviderUnavailable):
            await start
    assert [r.headers["x-stainless-retry-count"] for r in calls.requests] == ["0"] * 5


# --- deprecation warnings --------------------------------------------------------------------


async def test_the_sdk_deprecation_notice_is_silenced_locally(scripted: Make) -> None:
    envelope: dict[str, Any] = {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/content"):
            return httpx2.Response(200, content=b"x", headers={"content-type": "video/mp4"})
        if request.method == "DELETE":
            return httpx2.Response(
                200, json={"id": "v", "object": "video.deleted", "deleted": True}
            )
        listing = request.method == "GET" and request.url.path == "/v1/videos"
        return httpx2.Response(200, json=envelope if listing else video_json())

    provider = scripted(handler).provider
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await provider.create(REQUEST)
        await provider.retrieve(VIDEO_ID)
        await provider.remix(VIDEO_ID, "p")
        await provider.list()
        await provider.delete(VIDEO_ID)
        async with provider.stream_content(VIDEO_ID) as stream:
            assert [c async for c in stream.aiter_bytes()] == [b"x"]
        # Other warnings still get through.
        warnings.warn("unrelated", DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["unrelated"]
    assert list(warnings.filters) == filters_before


# --- content streaming -----------------------------------------------------------------------


async def test_download_streams_instead_of_buffering(scripted: Make) -> None:
    """The first chunk reaches us while upstream is still holding back the rest."""
    release = anyio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"\x00\x00\x00\x18ftypmp42"
        await release.wait()
        yield b"rest"

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert dict(request.url.params) == {"variant": "thumbnail"}
        assert request.headers["accept"] == "application/binary"
        return httpx2.Response(200, content=body(), headers={"content-type": "image/webp"})

    provider = scripted(handler).provider
    with anyio.fail_after(5):
        async with provider.stream_content(VIDEO_ID, Variant.THUMBNAIL) as stream:
            assert isinstance(stream, ContentStream)
            assert (stream.content_type, stream.content_length) == ("image/webp", None)
            chunks = stream.aiter_bytes()
            assert await anext(chunks) == b"\x00\x00\x00\x18ftypmp42"
            release.set()
            assert [c async for c in chunks] == [b"rest"]


async def test_download_defaults_the_content_type_by_variant(scripted: Make) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"\xff\xd8\xff", headers={"content-type": ""})

    async with scripted(handler).provider.stream_content(VIDEO_ID, Variant.SPRITESHEET) as s:
        assert (s.content_type, s.content_length) == ("image/jpeg", 3)


async def test_a_short_download_is_an_error(scripted: Make) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"12345"

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body(), headers={"content-length": "10"})

    async with scripted(handler).provider.stream_content(VIDEO_ID) as stream:
        with pytest.raises(ProviderTimeout, match="5 of 10 bytes"):
            async for _ in stream.aiter_bytes():
                pass


async def test_a_connection_lost_mid_download_is_mapped(scripted: Make) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"part"
        raise httpx2.ReadError("reset")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body())

    async with scripted(handler).provider.stream_content(VIDEO_ID) as stream:
        with pytest.raises(ProviderTimeout, match="broke"):
            async for _ in stream.aiter_bytes():
                pass


async def test_download_errors_are_mapped_on_open(scripted: Make) -> None:
    handler = error(400, "Video is not ready yet.", code="video_not_ready")
    with pytest.raises(ProviderRejected) as caught:
        async with scripted(handler).provider.stream_content(VIDEO_ID):
            pytest.fail("opened")  # pragma: no cover
    assert caught.value.code == "video_not_ready"


async def test_consumer_errors_pass_through_unchanged(scripted: Make) -> None:
    provider = scripted(lambda request: httpx2.Response(200, content=b"abc")).provider
    with pytest.raises(KeyError):
        async with provider.stream_content(VIDEO_ID):
            raise KeyError("storage full")


async def test_an_exhausted_quota_is_not_retryable(scripted: Make) -> None:
    handler = error(429, "You exceeded your current quota.", code="insufficient_quota")
    with pytest.raises(ProviderRateLimited) as caught:
        await scripted(handler).provider.create(REQUEST)
    assert not caught.value.retryable


async def test_a_list_with_broken_json_is_a_protocol_error(scripted: Make) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=b'{"data": [', headers={"content-type": "application/json"}
        )

    with pytest.raises(ProviderProtocolError, match="invalid JSON"):
        await scripted(handler).provider.list()
