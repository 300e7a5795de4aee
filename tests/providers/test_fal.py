"""FalProvider against a fake of fal's queue protocol over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from reelforge.domain.upstream import (
    CreateRequest,
    ImageBytes,
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    UpstreamStatus,
    Variant,
)
from reelforge.emulator.server import running
from reelforge.providers.fal import FalProvider
from tests.providers.fakes.fal import API_KEY, FalFake
from tests.providers.fakes.media import tiny_mp4

pytestmark = pytest.mark.anyio

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"


@pytest.fixture
def fake() -> Iterator[FalFake]:
    fake = FalFake()
    with running(fake.app()) as server:
        fake.root = server.root
        yield fake


@pytest.fixture
async def fal(fake: FalFake) -> AsyncIterator[FalProvider]:
    provider = FalProvider(api_key=API_KEY, base_url=fake.root)
    yield provider
    await provider.aclose()


def _request(model: str = KLING, **changes: object) -> CreateRequest:
    values: dict[str, object] = {
        "prompt": "a lighthouse at dusk",
        "model": model,
        "size": "720x1280",
        "seconds": "10",
    }
    return CreateRequest(**(values | changes))  # type: ignore[arg-type]


async def _content(fal: FalProvider, video_id: str, variant: Variant) -> bytes:
    async with fal.stream_content(video_id, variant) as stream:
        return b"".join([chunk async for chunk in stream.aiter_bytes()])


async def test_a_job_goes_from_queue_to_archive(fal: FalProvider, fake: FalFake) -> None:
    created = await fal.create(_request())
    job = fake.jobs[fake.submissions[0]]
    # Kling's inputs: duration as a string of seconds, the aspect ratio of the size.
    assert job.endpoint == KLING
    assert job.input == {"prompt": "a lighthouse at dusk", "duration": "10", "aspect_ratio": "9:16"}
    queued = await fal.retrieve(created.id)
    assert (queued.status, queued.queue_position) == (UpstreamStatus.QUEUED, 2)
    running_ = await fal.retrieve(created.id)
    assert running_.status is UpstreamStatus.IN_PROGRESS
    # Asked with `logs=1`: the newest of fal's log lines.
    assert running_.log_message == "step 1: denoising"
    done = await fal.retrieve(created.id)
    assert done.status is UpstreamStatus.COMPLETED
    assert done.expires_at is None
    assert (done.size, done.seconds) == ("720x1280", "10")
    assert await _content(fal, created.id, Variant.VIDEO) == tiny_mp4()
    thumbnail = await _content(fal, created.id, Variant.THUMBNAIL)
    sheet = await _content(fal, created.id, Variant.SPRITESHEET)
    assert thumbnail[:4] == b"RIFF"
    assert thumbnail[8:12] == b"WEBP"
    assert sheet[:3] == b"\xff\xd8\xff"


async def test_each_model_gets_its_own_input_names(fal: FalProvider, fake: FalFake) -> None:
    await fal.create(_request("fal-ai/veo3.1", size="1920x1080", seconds="8"))
    await fal.create(_request("fal-ai/ltx-2.3/text-to-video", size="1080x1920", seconds="6"))
    image = ImageBytes(data=b"\x89PNG fake", content_type="image/png")
    await fal.create(_request(input_reference=image, seconds="5"))
    veo, ltx, kling = (fake.jobs[rid] for rid in fake.submissions)
    assert veo.input["duration"] == "8s"
    assert veo.input["resolution"] == "1080p"
    assert ltx.input["duration"] == 6
    assert ltx.input["aspect_ratio"] == "9:16"
    assert kling.endpoint.endswith("/image-to-video")
    assert kling.input["image_url"].startswith("data:image/png;base64,")
    assert "aspect_ratio" not in kling.input  # Kling's image-to-video takes no aspect ratio


async def test_a_failed_request_says_why(fal: FalProvider, fake: FalFake) -> None:
    fake.fail_next = ("content_policy_violation", "The prompt was flagged")
    created = await fal.create(_request())
    for _ in range(3):
        view = await fal.retrieve(created.id)
    assert view.status is UpstreamStatus.FAILED
    assert (view.error_code, view.error_message) == (
        "content_policy_violation",
        "The prompt was flagged",
    )


async def test_an_overlong_failure_is_cut_to_what_a_video_row_keeps(
    fal: FalProvider, fake: FalFake
) -> None:
    fake.fail_next = ("x" * 500, "why " * 5_000)
    created = await fal.create(_request())
    for _ in range(3):
        view = await fal.retrieve(created.id)
    assert view.status is UpstreamStatus.FAILED
    assert view.error_code == "x" * 80  # the column is String(80)
    assert view.error_message == ("why " * 5_000)[:2000]


async def test_a_result_that_is_an_error_fails_the_video(fal: FalProvider, fake: FalFake) -> None:
    fake.result_error_next = (
        422,
        {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "value_error"}]},
    )
    created = await fal.create(_request())
    for _ in range(3):
        view = await fal.retrieve(created.id)
    assert (view.status, view.error_code, view.error_message) == (
        UpstreamStatus.FAILED,
        "value_error",
        "too long",
    )


async def test_an_output_url_gone_reads_as_expired(fal: FalProvider, fake: FalFake) -> None:
    fake.expire_next = True
    created = await fal.create(_request())
    for _ in range(3):
        view = await fal.retrieve(created.id)
    assert view.status is UpstreamStatus.COMPLETED
    assert view.expires_at is not None  # already past: the engine marks the video expired


async def test_rate_limiting_carries_the_vendors_retry_hint(
    fal: FalProvider, fake: FalFake
) -> None:
    fake.refuse_submits.append((429, {"detail": "Too many requests"}, {"retry-after": "7"}))
    with pytest.raises(ProviderRateLimited) as caught:
        await fal.create(_request())
    assert caught.value.retryable
    assert caught.value.retry_after == 7.0
    assert not fake.submissions  # nothing was queued


async def test_a_bad_key_is_an_auth_error_and_fails_the_health_check(fake: FalFake) -> None:
    provider = FalProvider(api_key="wrong", base_url=fake.root)
    try:
        with pytest.raises(ProviderAuthError):
            await provider.check()
    finally:
        await provider.aclose()


async def test_health_check_passes_with_a_good_key(fal: FalProvider) -> None:
    await fal.check()


async def test_a_malformed_answer_is_a_protocol_error(fal: FalProvider, fake: FalFake) -> None:
    created = await fal.create(_request())
    fake.malformed_status = True
    with pytest.raises(ProviderProtocolError):
        await fal.retrieve(created.id)


async def test_delete_cancels_a_queued_request_and_accepts_a_finished_one(
    fal: FalProvider, fake: FalFake
) -> None:
    queued = await fal.create(_request())
    await fal.delete(queued.id)
    assert fake.jobs[fake.submissions[0]].cancelled
    finished = await fal.create(_request())
    for _ in range(3):
        await fal.retrieve(finished.id)
    await fal.delete(finished.id)  # ALREADY_COMPLETED: nothing to stop, no error


async def test_a_video_without_readable_frames_has_no_previews(
    fal: FalProvider, fake: FalFake
) -> None:
    fake.junk_next = True
    created = await fal.create(_request())
    for _ in range(3):
        await fal.retrieve(created.id)
    video = await _content(fal, created.id, Variant.VIDEO)
    assert video.startswith(b"\x00\x00\x00\x18ftyp")
    # Not retryable: the engine archives the video without a thumbnail.
    with pytest.raises(ProviderNotFound) as caught:
        await _content(fal, created.id, Variant.THUMBNAIL)
    assert caught.value.code == "no_preview"
    assert len(fake.submissions) == 1


async def test_a_submit_names_the_webhook_url_when_one_is_configured(
    fal: FalProvider, fake: FalFake
) -> None:
    hook = "https://reelforge.example.org/webhooks/fal"
    with_hook = FalProvider(api_key=API_KEY, base_url=fake.root, webhook_url=hook)
    try:
        await with_hook.create(_request())
    finally:
        await with_hook.aclose()
    await fal.create(_request())
    first, second = (fake.jobs[rid] for rid in fake.submissions)
    assert first.webhook_url == hook
    assert second.webhook_url is None
    assert "fal_webhook" not in first.input  # a query parameter, not a model input


@pytest.mark.parametrize(
    ("status", "body", "kind", "code", "param"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "duration"], "msg": "bad", "type": "value_error"}]},
            ProviderRejected,
            "value_error",
            "duration",
        ),
        (
            400,
            {"detail": "nope", "error_type": "content_policy_violation"},
            ProviderRejected,
            "content_policy_violation",
            None,
        ),
        (403, {"detail": "Forbidden"}, ProviderAuthError, None, None),
        (500, {"detail": "Internal Server Error"}, ProviderUnavailable, None, None),
        (503, {"detail": "busy"}, ProviderUnavailable, None, None),
        (409, {"detail": "conflict"}, ProviderUnavailable, None, None),
    ],
)
async def test_fals_error_answers_map_to_the_engines_errors(
    fal: FalProvider,
    fake: FalFake,
    status: int,
    body: dict[str, object],
    kind: type[ProviderError],
    code: str | None,
    param: str | None,
) -> None:
    fake.refuse_submits.append((status, body, {}))
    with pytest.raises(kind) as caught:
        await fal.create(_request())
    assert (caught.value.status, caught.value.code, caught.value.param) == (status, code, param)
    # A 5xx may come after fal queued the request: a create's outcome is then unknown.
    assert caught.value.outcome_unknown == (status >= 500)


@pytest.mark.parametrize(
    "answer",
    [{"queue_position": 0}, {"request_id": ""}, {"request_id": 7}, ["not", "an", "object"]],
)
async def test_a_submit_answer_without_a_request_id_is_a_protocol_error(
    fal: FalProvider, fake: FalFake, answer: object
) -> None:
    fake.refuse_submits.append((200, answer, {}))
    with pytest.raises(ProviderProtocolError) as caught:
        await fal.create(_request())
    assert caught.value.outcome_unknown  # fal may have queued it all the same


async def test_a_result_without_a_video_url_is_a_protocol_error(
    fal: FalProvider, fake: FalFake
) -> None:
    fake.steps_next = ["COMPLETED"]
    fake.result_error_next = (200, {"images": []})
    created = await fal.create(_request())
    with pytest.raises(ProviderProtocolError):
        await fal.retrieve(created.id)
