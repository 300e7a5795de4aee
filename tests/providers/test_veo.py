"""VeoProvider on the google-genai SDK against a fake of the Gemini API over loopback HTTP."""

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
from reelforge.providers.veo import VeoProvider
from tests.providers.fakes.media import tiny_mp4
from tests.providers.fakes.veo import API_KEY, VeoFake, rate_limited

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> Iterator[tuple[VeoFake, str]]:
    fake = VeoFake()
    with running(fake.app()) as server:
        yield fake, server.root


@pytest.fixture
async def veo(fake: tuple[VeoFake, str]) -> AsyncIterator[VeoProvider]:
    provider = VeoProvider(api_key=API_KEY, base_url=fake[1])
    yield provider
    await provider.aclose()


def _request(**changes: object) -> CreateRequest:
    values: dict[str, object] = {
        "prompt": "waves on a pier",
        "model": "veo-3.1",
        "size": "1080x1920",
        "seconds": "6",
    }
    return CreateRequest(**(values | changes))  # type: ignore[arg-type]


async def _content(veo: VeoProvider, video_id: str, variant: Variant) -> bytes:
    async with veo.stream_content(video_id, variant) as stream:
        return b"".join([chunk async for chunk in stream.aiter_bytes()])


async def test_a_job_runs_to_a_downloaded_video(
    veo: VeoProvider, fake: tuple[VeoFake, str]
) -> None:
    image = ImageBytes(data=b"\x89PNG first frame", content_type="image/png")
    created = await veo.create(_request(input_reference=image))
    ((_name, operation),) = fake[0].operations.items()
    assert operation.model == "veo-3.1-generate-preview"
    assert operation.body["parameters"] == {
        "sampleCount": 1,
        "durationSeconds": 6,
        "aspectRatio": "9:16",
        "resolution": "1080p",
    }
    assert operation.body["instances"][0]["image"]["mimeType"] == "image/png"
    assert (await veo.retrieve(created.id)).status is UpstreamStatus.IN_PROGRESS
    done = await veo.retrieve(created.id)
    assert done.status is UpstreamStatus.COMPLETED
    assert await _content(veo, created.id, Variant.VIDEO) == tiny_mp4()
    thumbnail = await _content(veo, created.id, Variant.THUMBNAIL)
    assert thumbnail[8:12] == b"WEBP"


async def test_safety_filtered_outcome_is_a_failure_with_reasons(
    veo: VeoProvider, fake: tuple[VeoFake, str]
) -> None:
    fake[0].outcome_next = "filtered"
    created = await veo.create(_request())
    await veo.retrieve(created.id)
    failed = await veo.retrieve(created.id)
    assert failed.status is UpstreamStatus.FAILED
    assert failed.error_code == "content_filtered"
    assert "The prompt could not be submitted." in (failed.error_message or "")


async def test_an_operation_error_is_a_failure(veo: VeoProvider, fake: tuple[VeoFake, str]) -> None:
    fake[0].outcome_next = "error"
    created = await veo.create(_request())
    await veo.retrieve(created.id)
    failed = await veo.retrieve(created.id)
    assert (failed.status, failed.error_message) == (
        UpstreamStatus.FAILED,
        "The input image is not supported",
    )


async def test_rate_limiting_carries_googles_retry_delay(
    veo: VeoProvider, fake: tuple[VeoFake, str]
) -> None:
    fake[0].refuse_next = rate_limited(30)
    with pytest.raises(ProviderRateLimited) as caught:
        await veo.create(_request())
    assert caught.value.retry_after == 30.0
    assert caught.value.code == "RESOURCE_EXHAUSTED"
    assert not fake[0].operations


async def test_an_expired_file_is_not_found(veo: VeoProvider, fake: tuple[VeoFake, str]) -> None:
    created = await veo.create(_request())
    await veo.retrieve(created.id)
    await veo.retrieve(created.id)
    fake[0].deleted_files.update(op.file_id for op in fake[0].operations.values())
    with pytest.raises(ProviderNotFound):
        await _content(veo, created.id, Variant.VIDEO)


async def test_a_bad_key_fails_the_health_check(fake: tuple[VeoFake, str]) -> None:
    provider = VeoProvider(api_key="wrong", base_url=fake[1])
    try:
        with pytest.raises(ProviderAuthError):
            await provider.check()
    finally:
        await provider.aclose()


async def test_an_unknown_operation_is_not_found(veo: VeoProvider) -> None:
    with pytest.raises(ProviderNotFound):
        await veo.retrieve("models/veo-3.1-generate-preview/operations/nope|veo-3.1|1280x720|8")


@pytest.mark.parametrize(
    ("status", "google_status", "kind"),
    [
        (400, "INVALID_ARGUMENT", ProviderRejected),
        (400, "FAILED_PRECONDITION", ProviderRejected),
        (403, "PERMISSION_DENIED", ProviderAuthError),
        (500, "INTERNAL", ProviderUnavailable),
        (503, "UNAVAILABLE", ProviderUnavailable),
    ],
)
async def test_googles_error_answers_map_to_the_engines_errors(
    veo: VeoProvider,
    fake: tuple[VeoFake, str],
    status: int,
    google_status: str,
    kind: type[ProviderError],
) -> None:
    error = {"code": status, "message": "no", "status": google_status}
    fake[0].refuse_next = (status, {"error": error})
    with pytest.raises(kind) as caught:
        await veo.create(_request())
    assert caught.value.status == status
    assert caught.value.code == google_status
    assert not fake[0].operations


@pytest.mark.parametrize("answer", [{"done": False}, {"name": ""}, ["a list"], "a string"])
async def test_a_malformed_answer_is_a_protocol_error(
    veo: VeoProvider, fake: tuple[VeoFake, str], answer: object
) -> None:
    fake[0].refuse_next = (200, answer)  # type: ignore[assignment]
    with pytest.raises(ProviderProtocolError) as caught:
        await veo.create(_request())
    assert caught.value.outcome_unknown


async def test_a_finished_operation_with_neither_response_nor_error_is_a_protocol_error(
    veo: VeoProvider, fake: tuple[VeoFake, str]
) -> None:
    created = await veo.create(_request())
    ((_name, operation),) = fake[0].operations.items()
    operation.polls_left = 0
    operation.outcome = "empty"
    with pytest.raises(ProviderProtocolError):
        await veo.retrieve(created.id)
