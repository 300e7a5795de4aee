"""OpenAIProvider against the real emulator, in-process: every call, every mapped failure."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from PIL import Image

from reelforge.domain.upstream import (
    CreateRequest,
    ImageBytes,
    ImageUrl,
    ProviderAuthError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamStatus,
    UpstreamVideo,
    Variant,
)
from reelforge.providers.base import Provider

pytestmark = pytest.mark.anyio

MakeUpstream = Callable[..., Awaitable[Any]]  # -> conftest.Upstream
WIDTH, HEIGHT = 720, 1280


def request(prompt: str = "a red ball bouncing on a beach", **changes: Any) -> CreateRequest:
    fields: dict[str, Any] = {"model": "sora-2", "size": f"{WIDTH}x{HEIGHT}", "seconds": "4"}
    fields.update(changes)
    return CreateRequest(prompt=prompt, **fields)


def png(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def settle(provider: Provider, video: UpstreamVideo, seconds: float = 60) -> UpstreamVideo:
    """Poll as the job engine would, honouring the provider's hint, until the job ends."""
    with anyio.fail_after(seconds):
        while not video.is_terminal:
            await anyio.sleep((video.poll_after_ms or 50) / 1000)
            video = await provider.retrieve(video.id)
    return video


async def download(provider: Provider, video_id: str, variant: Variant) -> tuple[str, bytes]:
    async with provider.stream_content(video_id, variant) as stream:
        data = b"".join([chunk async for chunk in stream.aiter_bytes()])
        assert stream.content_length == len(data)
        return stream.content_type, data


# --- every call ------------------------------------------------------------------------------


async def test_create_poll_and_download_every_variant(upstream: Any) -> None:
    provider = upstream.provider
    assert provider.name == "emulator"
    created = await provider.create(request())
    assert created.status in (UpstreamStatus.QUEUED, UpstreamStatus.IN_PROGRESS)
    assert (created.model, created.size, created.seconds) == ("sora-2", "720x1280", "4")
    assert created.prompt == "a red ball bouncing on a beach"
    assert created.created_at is not None
    assert created.poll_after_ms == 20

    done = await settle(provider, created)
    assert done.status is UpstreamStatus.COMPLETED
    assert done.progress == 100
    assert done.poll_after_ms is None
    assert done.completed_at is not None
    assert done.expires_at is not None
    assert done.expires_at > done.completed_at

    kind, mp4 = await download(provider, done.id, Variant.VIDEO)
    assert (kind, mp4[4:8]) == ("video/mp4", b"ftyp")
    kind, webp = await download(provider, done.id, Variant.THUMBNAIL)
    assert (kind, webp[:4], webp[8:12]) == ("image/webp", b"RIFF", b"WEBP")
    kind, jpeg = await download(provider, done.id, Variant.SPRITESHEET)
    assert (kind, jpeg[:3]) == ("image/jpeg", b"\xff\xd8\xff")


async def test_create_with_image_bytes_and_with_an_image_url(upstream: Any) -> None:
    provider = upstream.provider
    image = png()
    uploaded = await provider.create(
        request("a lighthouse", input_reference=ImageBytes(image, "image/png", "first.png"))
    )
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    linked = await provider.create(request("a lighthouse", input_reference=ImageUrl(data_url)))
    for video in (uploaded, linked):
        assert (await settle(provider, video)).status is UpstreamStatus.COMPLETED
    assert [row["kind"] for row in await upstream.ledger()] == ["create", "create"]


async def test_a_reference_image_of_the_wrong_size_is_rejected(upstream: Any) -> None:
    wrong = ImageBytes(png(64, 64), "image/png")
    with pytest.raises(ProviderRejected) as caught:
        await upstream.provider.create(request(input_reference=wrong))
    assert caught.value.status == 400
    assert caught.value.param == "input_reference"


async def test_remix_edit_and_extend_a_completed_video(upstream: Any) -> None:
    provider = upstream.provider
    source = await settle(provider, await provider.create(request("a sailboat at dawn")))
    remix = await provider.remix(source.id, "a sailboat at dusk")
    edit = await provider.edit(source.id, "make the sail red")
    extend = await provider.extend(source.id, "it sails away", "4")
    assert remix.remixed_from_video_id == source.id
    assert len({source.id, remix.id, edit.id, extend.id}) == 4
    finished = [await settle(provider, video) for video in (remix, edit, extend)]
    assert [video.status for video in finished] == [UpstreamStatus.COMPLETED] * 3
    assert finished[2].seconds == "8"  # an extension reports the stitched total
    kinds = [row["kind"] for row in await upstream.ledger()]
    assert kinds == ["create", "remix", "edit", "extension"]


async def test_list_pages_through_everything(upstream: Any) -> None:
    provider = upstream.provider
    ids = [(await provider.create(request(f"scene {n}"))).id for n in range(3)]

    first = await provider.list(limit=2)
    assert [video.id for video in first.items] == ids[::-1][:2]
    assert (first.first_id, first.last_id, first.has_more) == (ids[2], ids[1], True)
    second = await provider.list(after=first.last_id, limit=2)
    assert [video.id for video in second.items] == [ids[0]]
    assert second.has_more is False

    ascending = await provider.list(order="asc")
    assert [video.id for video in ascending.items] == ids
    await provider.check()


async def test_delete_removes_the_job(upstream: Any) -> None:
    provider = upstream.provider
    done = await settle(provider, await provider.create(request()))
    await provider.delete(done.id)
    with pytest.raises(ProviderNotFound):
        await provider.retrieve(done.id)
    with pytest.raises(ProviderNotFound):
        await provider.delete(done.id)


async def test_a_failed_job_reports_its_error(upstream: Any) -> None:
    provider = upstream.provider
    failed = await settle(
        provider, await provider.create(request("a storm [[fail=moderation_blocked]]"))
    )
    assert failed.status is UpstreamStatus.FAILED
    assert failed.error_code == "moderation_blocked"
    assert failed.error_message
    with pytest.raises(ProviderRejected) as caught:
        await download(provider, failed.id, Variant.VIDEO)
    assert caught.value.code == "video_failed"


# --- every failure, mapped -------------------------------------------------------------------


async def test_unknown_id_is_not_found(upstream: Any) -> None:
    missing = "video_00000000" + "0" * 40
    with pytest.raises(ProviderNotFound) as caught:
        await upstream.provider.retrieve(missing)
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")
    with pytest.raises(ProviderNotFound):
        await download(upstream.provider, missing, Variant.THUMBNAIL)


async def test_a_bad_size_names_the_param(upstream: Any) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await upstream.provider.create(request(size="1920x1080"))
    exc = caught.value
    assert (exc.status, exc.code, exc.param) == (400, "invalid_value", "size")
    assert "'720x1280'" in exc.message
    assert not exc.retryable
    assert not exc.outcome_unknown
    assert await upstream.ledger() == []


async def test_a_wrong_key_is_an_auth_error(make_upstream: MakeUpstream) -> None:
    upstream = await make_upstream(client_key="sk-wrong", api_key="sk-right")
    with pytest.raises(ProviderAuthError) as caught:
        await upstream.provider.check()
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")
    assert "sk-wrong" not in caught.value.message  # the key is masked


async def test_rate_limited_creates_carry_retry_after(upstream: Any) -> None:
    await upstream.faults(rate_limit_rpm=1)
    await upstream.provider.create(request())
    with pytest.raises(ProviderRateLimited) as caught:
        await upstream.provider.create(request())
    exc = caught.value
    assert (exc.status, exc.code) == (429, "rate_limit_exceeded")
    assert exc.retryable
    assert exc.retry_after is not None
    assert 0 < exc.retry_after <= 60
    assert await upstream.calls("videos.create") == 2  # the SDK did not retry it
    assert len(await upstream.ledger()) == 1


async def test_an_injected_429_keeps_retry_after(upstream: Any) -> None:
    await upstream.faults(error_burst=1, error_status=429, retry_after_ms=2500)
    with pytest.raises(ProviderRateLimited) as caught:
        await upstream.provider.list()
    assert caught.value.retry_after == 2.5


async def test_a_5xx_burst_is_unavailable_and_never_retried_by_the_sdk(upstream: Any) -> None:
    provider = upstream.provider
    video = await provider.create(request())
    await upstream.faults(error_burst=3, error_status=503, retry_after_ms=1)
    for _ in range(3):
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.retrieve(video.id)
        assert caught.value.status == 503
        assert caught.value.retryable
    assert (await provider.retrieve(video.id)).id == video.id
    assert await upstream.calls("videos.retrieve") == 4


async def test_a_5xx_on_create_is_an_unknown_outcome(upstream: Any) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await upstream.provider.create(request("a fox [[500]]"))
    assert caught.value.outcome_unknown
    assert await upstream.calls("videos.create") == 1


async def test_a_late_create_times_out_after_creating_exactly_once(
    make_upstream: MakeUpstream,
) -> None:
    upstream = await make_upstream(timeout=0.5)
    provider = upstream.provider
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout) as caught:
        await provider.create(request("a slow river [[late-create=30]]"))
    assert time.perf_counter() - started < 5
    assert caught.value.outcome_unknown
    assert caught.value.retryable

    # Every create that reaches the emulator makes a job before the answer is delayed, so one
    # ledger row means the SDK sent it once: no retry after the timeout.
    rows = await upstream.ledger()
    assert [row["kind"] for row in rows] == ["create"]
    # How the engine reconciles: the job is there to be found by listing.
    page = await provider.list(limit=5)
    assert [video.id for video in page.items] == [rows[0]["id"]]


async def test_download_before_completion_is_rejected(upstream: Any) -> None:
    provider = upstream.provider
    pending = await provider.create(request("a glacier [[latency=30]]"))
    with pytest.raises(ProviderRejected) as caught:
        await download(provider, pending.id, Variant.VIDEO)
    assert (caught.value.status, caught.value.code) == (400, "video_not_ready")
    with pytest.raises(ProviderRejected) as caught:
        await provider.delete(pending.id)
    assert caught.value.code == "video_not_ready"


async def test_a_truncated_download_is_detected(upstream: Any) -> None:
    provider = upstream.provider
    done = await settle(provider, await provider.create(request("a kite [[truncate=0.5]]")))
    async with provider.stream_content(done.id) as stream:
        assert stream.content_length
        with pytest.raises(ProviderTimeout, match="download ended after"):
            async for _ in stream.aiter_bytes():
                pass


async def test_expired_content_is_rejected(upstream: Any) -> None:
    provider = upstream.provider
    done = await settle(provider, await provider.create(request("a comet [[ttl=60]]")))
    answer = await upstream.control.post("/_emulator/clock", json={"advance_seconds": 120})
    assert answer.status_code == 200
    with pytest.raises(ProviderRejected) as caught:
        await download(provider, done.id, Variant.VIDEO)
    assert caught.value.code == "video_expired"
