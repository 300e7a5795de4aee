"""Conformance: the official SDK, sync and async, through every Videos method and error."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import openai
import pytest
from openai.types import Video
from PIL import Image

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.render import RenderSpec
from reelforge.emulator.service import Emulator
from tests.emulator.helpers import API_KEY, SDK, SECONDS, SIZE, cached_render, make_settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

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


def png(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


async def finished(sdk: SDK, prompt: str = PROMPT, **kwargs: Any) -> Video:
    kwargs.setdefault("size", SIZE)
    kwargs.setdefault("seconds", SECONDS)
    video: Video = await sdk("videos.create_and_poll", prompt=prompt, **kwargs)
    assert video.status == "completed", video.error
    return video


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


# --- happy paths -------------------------------------------------------------------------------


async def test_create_poll_and_download_every_variant(sdk: SDK) -> None:
    created: Video = await sdk("videos.create", prompt=PROMPT, size=SIZE, seconds=SECONDS)
    assert created.id.startswith("video_")
    assert len(created.id) == len("video_") + 48
    assert int(created.id[6:14], 16) == created.created_at
    assert created.object == "video"
    assert created.status in ("queued", "in_progress")
    assert (created.model, created.size, created.seconds, created.prompt) == (
        "sora-2",
        SIZE,
        SECONDS,
        PROMPT,
    )
    assert created.completed_at is None
    assert created.expires_at is None
    assert created.error is None
    assert sorted(created.model_dump()) == sorted(VIDEO_KEYS)  # every key present

    done: Video = await sdk("videos.poll", created.id)
    assert done.status == "completed"
    assert done.progress == 100
    assert done.completed_at is not None
    assert done.expires_at == done.completed_at + 3600

    assert is_mp4(await sdk.download(done.id))
    assert is_mp4(await sdk.download(done.id, variant="video"))
    thumbnail = await sdk.download(done.id, variant="thumbnail")
    assert thumbnail[:4] == b"RIFF"
    assert thumbnail[8:12] == b"WEBP"
    assert (await sdk.download(done.id, variant="spritesheet"))[:3] == b"\xff\xd8\xff"


async def test_create_fills_defaults_and_echoes_snapshot_models(sdk: SDK) -> None:
    video: Video = await sdk("videos.create", prompt=PROMPT)
    assert (video.model, video.size, video.seconds) == ("sora-2", "720x1280", "4")
    pro: Video = await sdk(
        "videos.create", prompt=PROMPT, model="sora-2-pro-2025-10-06", size="1792x1024"
    )
    assert (pro.model, pro.size) == ("sora-2-pro-2025-10-06", "1792x1024")


async def test_create_with_an_uploaded_reference_image(sdk: SDK) -> None:
    width, height = (int(part) for part in SIZE.split("x"))
    reference = ("ref.png", png(width, height), "image/png")
    assert (await finished(sdk, "a forest", input_reference=reference)).status == "completed"
    for fmt, name in (("JPEG", "ref.jpg"), ("WEBP", "ref.webp")):
        accepted: Video = await sdk(
            "videos.create",
            prompt="a forest",
            size=SIZE,
            input_reference=(name, png(width, height, fmt), f"image/{fmt.lower()}"),
        )
        assert accepted.status in ("queued", "in_progress")
    # The part content type is not trusted; the bytes are sniffed.
    untyped: Video = await sdk(
        "videos.create", prompt="a forest", size=SIZE, input_reference=png(width, height)
    )
    assert untyped.status in ("queued", "in_progress", "completed")


async def test_list_paginates_by_last_id(sdk: SDK) -> None:
    ids = [(await sdk("videos.create", prompt=f"{PROMPT} {n}")).id for n in range(3)]
    first = await sdk("videos.list", limit=2, order="asc")
    assert [video.id for video in first.data] == ids[:2]
    assert first.has_more is True
    assert first.last_id == ids[1]
    assert first.first_id == ids[0]
    assert [video.id for video in await sdk.collect("videos.list", limit=2, order="asc")] == ids
    newest_first = await sdk.collect("videos.list", limit=1)
    assert [video.id for video in newest_first] == ids[::-1]
    last_page = await sdk("videos.list", after=ids[1], order="asc")
    assert [video.id for video in last_page.data] == ids[2:]
    assert last_page.has_more is False
    empty = await sdk("videos.list", after=ids[2], order="asc")
    assert empty.data == []
    assert empty.first_id is None
    assert empty.last_id is None


async def test_delete_then_everything_is_404(sdk: SDK) -> None:
    video = await finished(sdk)
    deleted = await sdk("videos.delete", video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    for call in (
        sdk("videos.retrieve", video.id),
        sdk("videos.delete", video.id),
        sdk.download(video.id),
        sdk("videos.remix", video.id, prompt="again"),
    ):
        with pytest.raises(openai.NotFoundError):
            await call
    assert video.id not in [v.id for v in (await sdk("videos.list")).data]


async def test_remix_inherits_model_size_and_length(sdk: SDK) -> None:
    source = await finished(sdk, model="sora-2-pro", size="1280x720", seconds="4")
    remix: Video = await sdk("videos.remix", source.id, prompt="the same, at night")
    assert remix.id != source.id
    assert remix.remixed_from_video_id == source.id
    assert (remix.model, remix.size, remix.seconds) == ("sora-2-pro", "1280x720", "4")
    assert (await sdk("videos.poll", remix.id)).status == "completed"


async def test_edit_by_upload_and_by_id(sdk: SDK) -> None:
    source = await finished(sdk)
    data = await sdk.download(source.id)
    edited: Video = await sdk(
        "videos.edit", prompt="make it snow", video=("clip.mp4", data, "video/mp4")
    )
    assert edited.remixed_from_video_id == source.id
    assert edited.seconds == source.seconds
    by_id: Video = await sdk(
        "post",
        "/videos/edits",
        body={"video": {"id": source.id}, "prompt": "make it rain"},
        cast_to=Video,
    )
    assert by_id.remixed_from_video_id == source.id
    assert (await sdk("videos.poll", by_id.id)).status == "completed"


async def test_extend_stitches_the_total(sdk: SDK) -> None:
    source = await finished(sdk)
    data = await sdk.download(source.id)
    extended: Video = await sdk(
        "videos.extend", prompt="keep going", seconds="4", video=("clip.mp4", data, "video/mp4")
    )
    assert extended.seconds == "8"
    assert extended.remixed_from_video_id == source.id
    extended = await sdk("videos.poll", extended.id)
    assert extended.status == "completed"
    again: Video = await sdk(
        "post",
        "/videos/extensions",
        body={"video": {"id": extended.id}, "prompt": "and further", "seconds": "8"},
        cast_to=Video,
    )
    assert again.seconds == "16"


async def test_characters(sdk: SDK) -> None:
    source = await finished(sdk)
    clip = await sdk.download(source.id)
    character = await sdk(
        "videos.create_character", name="Mossy", video=("mossy.mp4", clip, "video/mp4")
    )
    assert character.id.startswith("char_")
    assert character.name == "Mossy"
    fetched = await sdk("videos.get_character", character.id)
    assert fetched.model_dump() == character.model_dump()
    with pytest.raises(openai.NotFoundError):
        await sdk("videos.get_character", "char_missing")
    video: Video = await sdk(
        "post",
        "/videos",
        body={"prompt": "Mossy in a meadow", "characters": [{"id": character.id}]},
        cast_to=Video,
    )
    assert video.prompt == "Mossy in a meadow"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk(
            "post",
            "/videos",
            body={"prompt": "ghost", "characters": [{"id": "char_nope"}]},
            cast_to=Video,
        )
    assert caught.value.param == "characters[0]"


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        (
            {"seconds": "10"},
            "seconds",
            "Invalid value: '10'. Supported values are: '4', '8', '12', '16', and '20'.",
        ),
        (
            {"size": "1920x1080"},
            "size",
            "Invalid value: '1920x1080'. Supported values are: '720x1280' and '1280x720'.",
        ),
        ({"model": "sora-3"}, "model", "Invalid value: 'sora-3'. Supported values are: "),
        ({"prompt": ""}, "prompt", "Invalid 'prompt': string too short."),
        ({"prompt": "x" * 32001}, "prompt", "Invalid 'prompt': string too long."),
    ],
)
async def test_invalid_create_is_400_naming_the_field(
    sdk: SDK, kwargs: dict[str, Any], param: str, message: str
) -> None:
    arguments = {"prompt": PROMPT, **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk("videos.create", **arguments)
    error = caught.value
    assert error.status_code == 400
    assert error.param == param
    assert error.type == "invalid_request_error"
    assert str(error).startswith(f"Error code: 400 - {message}")
    assert error.request_id
    assert error.request_id.startswith("req_")


async def test_reference_image_of_the_wrong_size_or_type(sdk: SDK) -> None:
    with pytest.raises(openai.BadRequestError) as wrong_size:
        await sdk(
            "videos.create",
            prompt=PROMPT,
            size=SIZE,
            input_reference=("ref.png", png(64, 64), "image/png"),
        )
    assert wrong_size.value.param == "input_reference"
    assert "Inpaint image must match the requested width and height" in str(wrong_size.value)
    with pytest.raises(openai.BadRequestError) as wrong_type:
        await sdk(
            "videos.create",
            prompt=PROMPT,
            input_reference=("ref.gif", b"GIF89a" + b"\0" * 32, "image/gif"),
        )
    assert "Supported formats are" in str(wrong_type.value)


async def test_unknown_ids_are_404(sdk: SDK) -> None:
    missing = "video_0000000000000000000000000000000000000000000000ff"
    for call in (
        sdk("videos.retrieve", missing),
        sdk("videos.delete", missing),
        sdk.download(missing),
        sdk("videos.remix", missing, prompt="x"),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.code == "not_found"


async def test_unfinished_videos_cannot_be_downloaded_remixed_or_deleted(sdk: SDK) -> None:
    pending: Video = await sdk("videos.create", prompt=f"{PROMPT} [[latency=30]]")
    for call in (
        sdk.download(pending.id),
        sdk("videos.remix", pending.id, prompt="x"),
        sdk("videos.delete", pending.id),
        sdk(
            "post",
            "/videos/edits",
            body={"video": {"id": pending.id}, "prompt": "x"},
            cast_to=Video,
        ),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await call
        assert caught.value.code == "video_not_ready"


async def test_failed_videos_report_the_error_and_have_no_content(sdk: SDK) -> None:
    failed: Video = await sdk("videos.create_and_poll", prompt=f"{PROMPT} [[fail]]")
    assert failed.status == "failed"
    assert failed.completed_at is None
    assert failed.error is not None
    assert failed.error.code == "video_generation_failed"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.download(failed.id)
    assert caught.value.code == "video_failed"
    assert (await sdk("videos.delete", failed.id)).deleted is True


@pytest.fixture
async def quick_extensions() -> AsyncIterator[SDK]:
    """An emulator whose renderer returns one real 4 s render for every spec.

    The limits below are bookkeeping; encoding 24 to 120 s of video six times over would only
    make the test slow.
    """
    assets = cached_render(RenderSpec(PROMPT, 720, 1280, 4))

    def same_clip(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
        return assets

    app = create_emulator_app(make_settings(), renderer=same_clip)
    http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=app))
    try:
        async with openai.AsyncOpenAI(
            base_url="http://emulator.test/v1", api_key=API_KEY, http_client=http
        ) as client:
            yield SDK(client)
    finally:
        app.state.emulator.close()


async def extend(sdk: SDK, video_id: str, seconds: str) -> Video:
    video: Video = await sdk(
        "post",
        "/videos/extensions",
        body={"video": {"id": video_id}, "prompt": "on", "seconds": seconds},
        cast_to=Video,
    )
    return video


async def test_extension_limits(quick_extensions: SDK) -> None:
    sdk = quick_extensions
    current = await finished(sdk, seconds="4")
    with pytest.raises(openai.BadRequestError) as bad_seconds:
        await extend(sdk, current.id, "5")
    assert bad_seconds.value.param == "seconds"
    for _ in range(5):  # 4 + 5 x 20 = 104 s, five extensions
        current = await sdk("videos.poll", (await extend(sdk, current.id, "20")).id)
    assert current.seconds == "104"
    with pytest.raises(openai.BadRequestError) as too_long:
        await extend(sdk, current.id, "20")
    assert too_long.value.param == "seconds"
    assert "120 seconds" in str(too_long.value)
    sixth = await sdk("videos.poll", (await extend(sdk, current.id, "16")).id)
    assert sixth.seconds == "120"
    with pytest.raises(openai.BadRequestError) as too_many:
        await extend(sdk, sixth.id, "4")
    assert "at most 6 extensions" in str(too_many.value)
    rows = (await sdk("get", "/../_emulator/ledger", cast_to=dict))["data"]
    assert [row["billed_seconds"] for row in rows] == [4, 20, 20, 20, 20, 20, 16]
    assert [row["kind"] for row in rows] == ["create"] + ["extension"] * 6


async def test_wrong_api_key_is_401(sdk: SDK) -> None:
    other = SDK(sdk.client.with_options(api_key="sk-wrong-key-123456", max_retries=0))
    with pytest.raises(openai.AuthenticationError) as caught:
        await other("videos.list")
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in str(caught.value)


async def test_list_arguments_are_validated(sdk: SDK) -> None:
    with pytest.raises(openai.BadRequestError) as too_many:
        await sdk("videos.list", limit=1000)
    assert too_many.value.code == "integer_above_max_value"
    with pytest.raises(openai.BadRequestError) as cursor:
        await sdk("videos.list", after="video_unknown")
    assert cursor.value.param == "after"


async def test_retrieve_sends_poll_after_while_pending(sdk: SDK, emulator: Emulator) -> None:
    pending: Video = await sdk("videos.create", prompt=f"{PROMPT} [[latency=30]]")
    raw = await sdk("videos.with_raw_response.retrieve", pending.id)
    assert raw.headers["openai-poll-after-ms"] == str(emulator.settings.poll_after_ms)
    assert raw.headers["x-request-id"].startswith("req_")
    video = raw.parse()
    if sdk.flavour == "async":
        video = await video if not isinstance(video, Video) else video
    assert video.status in ("queued", "in_progress")


async def test_streaming_download(sdk: SDK, tmp_path: Any) -> None:
    video = await finished(sdk)
    expected = await sdk.download(video.id)
    if sdk.flavour == "async":
        async with sdk.client.videos.with_streaming_response.download_content(video.id) as r:  # type: ignore[union-attr]
            chunks = [chunk async for chunk in r.iter_bytes()]
        assert b"".join(chunks) == expected
    else:
        target = tmp_path / "out.mp4"

        def stream() -> None:
            with sdk.client.videos.with_streaming_response.download_content(video.id) as r:  # type: ignore[union-attr]
                r.stream_to_file(target)

        import anyio

        await anyio.to_thread.run_sync(stream)
        assert target.read_bytes() == expected


async def test_async_client_against_the_live_server(live: Any) -> None:
    """The async client over real HTTP too (the sdk fixture uses it in-process)."""
    async with openai.AsyncOpenAI(
        base_url=live.base_url, api_key=API_KEY, http_client=httpx2.AsyncClient()
    ) as client:
        video = await client.videos.create_and_poll(prompt=PROMPT, size="720x1280")
        assert video.status == "completed"
        content = await client.videos.download_content(video.id)
        assert is_mp4(await content.aread())
