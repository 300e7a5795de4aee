"""The emulator's renderer: real H.264 MP4s that follow the prompt, and their previews."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from reelforge.emulator.render import (
    FPS,
    SPRITE_COLUMNS,
    SPRITE_ROWS,
    SPRITE_TILE_LONG_EDGE,
    THUMBNAIL_DIVISOR,
    RenderedAssets,
    RenderSpec,
    render,
)
from reelforge.emulator.scene import (
    Kind,
    TimeOfDay,
    Weather,
    continue_scene,
    remix_scene,
    scene_from_prompt,
)

MEADOW = RenderSpec("a sunny meadow with rolling hills", 1280, 720, 4, seed=7)
RGBArray = NDArray[np.uint8]


@cache
def rendered(spec: RenderSpec) -> RenderedAssets:
    """Each spec is rendered once per session: the renderer is deterministic."""
    return render(spec)


@dataclass(frozen=True)
class Probe:
    codec: str
    pix_fmt: str
    width: int
    height: int
    rate: float
    duration: float
    container_duration: float
    count: int  # frames decoded
    frames: dict[int, RGBArray]  # the wanted ones, as RGB; -1 is the last


def probe(video: bytes, wanted: Iterable[int] = (0,)) -> Probe:
    """Decode every frame (to count them) and keep the wanted ones as RGB."""
    wanted = set(wanted)
    frames: dict[int, RGBArray] = {}
    count, last = 0, None
    with av.open(io.BytesIO(video), "r") as container:
        stream = container.streams.video[0]
        for count, frame in enumerate(container.decode(stream), start=1):
            last = frame
            if count - 1 in wanted:
                frames[count - 1] = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        assert last is not None
        frames[-1] = np.asarray(last.to_ndarray(format="rgb24"), dtype=np.uint8)
        assert stream.duration is not None
        assert stream.time_base is not None
        assert container.duration is not None
        return Probe(
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt or "",
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            rate=float(stream.average_rate or 0),
            duration=float(stream.duration * stream.time_base),
            container_duration=container.duration / 1_000_000,
            count=count,
            frames=frames,
        )


def mean_difference(a: RGBArray, b: RGBArray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def luma_correlation(a: RGBArray, b: RGBArray) -> float:
    la, lb = a.astype(np.float64).mean(axis=2).ravel(), b.astype(np.float64).mean(axis=2).ravel()
    return float(np.corrcoef(la, lb)[0, 1])


def decode_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("width", "height", "prompt"),
    [
        (1280, 720, MEADOW.prompt),
        (720, 1280, "a neon city street at night in the rain"),
        (1792, 1024, "snow falling on a frozen lake in winter"),
        (1080, 1920, "a volcano erupting at dusk " * 400),  # far longer than the card holds
    ],
)
def test_the_video_is_h264_of_the_requested_size_and_length(
    width: int, height: int, prompt: str
) -> None:
    spec = MEADOW if prompt == MEADOW.prompt else RenderSpec(prompt, width, height, 4)
    video = probe(rendered(spec).video)

    assert (video.codec, video.pix_fmt) == ("h264", "yuv420p")
    assert (video.width, video.height) == (width, height)
    assert video.rate == FPS
    assert video.count == 4 * FPS
    assert video.duration == pytest.approx(4.0)
    assert video.container_duration == pytest.approx(4.0, abs=0.05)
    assert video.frames[-1].shape == (height, width, 3)


def test_the_index_comes_before_the_media_so_browsers_can_stream() -> None:
    video = rendered(MEADOW).video
    assert video[4:8] == b"ftyp"
    assert 0 < video.find(b"moov") < video.find(b"mdat")


def test_the_picture_moves() -> None:
    frames = probe(rendered(MEADOW).video).frames
    assert mean_difference(frames[0], frames[-1]) > 1.0


def test_the_same_spec_renders_the_same_bytes() -> None:
    first = rendered(MEADOW)
    again = render(MEADOW)
    assert again.video == first.video
    assert again.thumbnail == first.thumbnail
    assert again.spritesheet == first.spritesheet


@pytest.mark.parametrize(
    "other",
    [
        RenderSpec(MEADOW.prompt, 1280, 720, 4, seed=8),
        RenderSpec("a sunny meadow with rolling hills and a kite", 1280, 720, 4, seed=7),
    ],
    ids=["seed", "prompt"],
)
def test_another_seed_or_prompt_renders_other_bytes(other: RenderSpec) -> None:
    assets, base = rendered(other), rendered(MEADOW)
    assert assets.video != base.video
    assert assets.thumbnail != base.thumbnail
    assert assets.spritesheet != base.spritesheet


def test_an_extension_plays_its_source_then_continues_it() -> None:
    extension = RenderSpec("the wind picks up over the hills", 1280, 720, 4, extends=MEADOW)
    assert extension.total_seconds == 8
    checked = (0, FPS, 4 * FPS - 1)
    video = probe(rendered(extension).video, checked)
    source = probe(rendered(MEADOW).video, checked)

    assert video.count == 8 * FPS
    assert video.duration == pytest.approx(8.0)
    assert video.container_duration == pytest.approx(8.0, abs=0.05)
    for index in checked:
        assert mean_difference(video.frames[index], source.frames[index]) < 1.0
    # The new segment keeps the shot (same layout) but shows the new prompt.
    last = video.frames[-1]
    assert 0.5 < mean_difference(last, source.frames[-1]) < 20
    assert luma_correlation(last, source.frames[-1]) > 0.8


def test_extensions_chain_up_to_their_total() -> None:
    first = RenderSpec("a quiet harbor at dawn", 320, 180, 4)
    second = RenderSpec("boats drift out to sea", 320, 180, 4, extends=first)
    third = RenderSpec("night falls over the water", 320, 180, 8, extends=second)
    assert third.total_seconds == 16
    video = probe(render(third).video)
    assert video.count == 16 * FPS
    assert video.duration == pytest.approx(16.0)


def test_a_remix_keeps_the_shot_and_changes_it_by_the_new_prompt() -> None:
    remix = RenderSpec("the same, in vivid pastel light", 1280, 720, 4, parent=MEADOW)
    unrelated = RenderSpec("a neon city street at night in the rain", 1280, 720, 4)
    parent_still = np.asarray(decode_image(rendered(MEADOW).thumbnail).convert("RGB"))
    remix_still = np.asarray(decode_image(rendered(remix).thumbnail).convert("RGB"))
    other_still = np.asarray(decode_image(rendered(unrelated).thumbnail).convert("RGB"))

    assert rendered(remix).video != rendered(MEADOW).video
    to_parent = mean_difference(remix_still, parent_still)
    assert 2.0 < to_parent < mean_difference(other_still, parent_still)
    # Same layout: the light and dark parts of the picture stay where they were.
    assert luma_correlation(remix_still, parent_still) > 0.8
    assert luma_correlation(remix_still, parent_still) > luma_correlation(other_still, parent_still)


def _reference(width: int, height: int, kind: str) -> tuple[bytes, RGBArray]:
    ys, xs = np.mgrid[0:height, 0:width]
    checks = np.where((xs // 40 + ys // 40) % 2 == 0, 230, 30)
    pixels = np.stack((xs * 255 // width, ys * 255 // height, checks), axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, kind, quality=95)
    return out.getvalue(), pixels


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP"])
def test_a_reference_image_opens_the_video(kind: str) -> None:
    data, pixels = _reference(360, 640, kind)
    spec = RenderSpec("a dog running on a beach", 360, 640, 4, reference_image=data)
    frames = probe(rendered(spec).video, (0, FPS // 2, 2 * FPS)).frames
    assert mean_difference(frames[0], pixels) < 6.0
    assert mean_difference(frames[FPS // 2], pixels) < 6.0
    assert mean_difference(frames[2 * FPS], pixels) > 30.0  # then the scene takes over


def test_the_thumbnail_is_a_webp_of_the_middle_frame_at_half_size() -> None:
    thumbnail = decode_image(rendered(MEADOW).thumbnail)
    assert thumbnail.format == "WEBP"
    assert thumbnail.size == (1280 // THUMBNAIL_DIVISOR, 720 // THUMBNAIL_DIVISOR)
    middle = probe(rendered(MEADOW).video, (2 * FPS,)).frames[2 * FPS]
    half = np.asarray(Image.fromarray(middle).resize(thumbnail.size, Image.Resampling.BOX))
    assert mean_difference(np.asarray(thumbnail.convert("RGB")), half) < 6.0


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280)])
def test_the_spritesheet_is_a_jpeg_grid_of_frames(width: int, height: int) -> None:
    spec = (
        MEADOW
        if width == 1280
        else RenderSpec("a neon city street at night in the rain", 720, 1280, 4)
    )
    sheet = decode_image(rendered(spec).spritesheet)
    tile = (
        round(width * SPRITE_TILE_LONG_EDGE / max(width, height)),
        round(height * SPRITE_TILE_LONG_EDGE / max(width, height)),
    )
    assert sheet.format == "JPEG"
    assert sheet.size == (tile[0] * SPRITE_COLUMNS, tile[1] * SPRITE_ROWS)
    grid = np.asarray(sheet.convert("RGB"))
    first, last = grid[: tile[1], : tile[0]], grid[-tile[1] :, -tile[0] :]
    frames = probe(rendered(spec).video, (1,)).frames
    small = np.asarray(Image.fromarray(frames[1]).resize(tile, Image.Resampling.BOX))
    assert mean_difference(first, small) < 8.0
    assert mean_difference(first, last) > 1.0


def test_progress_rises_to_one() -> None:
    seen: list[float] = []
    render(RenderSpec("a calm ocean at sunset", 320, 180, 4), seen.append)
    assert len(seen) > 10
    assert all(0.0 <= value <= 1.0 for value in seen)
    assert all(a < b for a, b in itertools.pairwise(seen))
    assert seen[-1] == 1.0


@pytest.mark.parametrize(
    "spec",
    [
        RenderSpec("odd", 1281, 720, 4),
        RenderSpec("tiny", 128, 72, 4),
        RenderSpec("none", 1280, 720, 0),
        RenderSpec("resized", 720, 1280, 4, extends=MEADOW),
    ],
    ids=["odd-width", "tiny", "zero-seconds", "extension-of-another-size"],
)
def test_impossible_specs_are_refused(spec: RenderSpec) -> None:
    with pytest.raises(ValueError, match=r"size|seconds"):
        render(spec)


def test_a_reference_that_is_not_an_image_is_refused() -> None:
    spec = RenderSpec("a dog", 320, 180, 4, reference_image=b"GIF89a, or rather not")
    with pytest.raises(ValueError, match="reference_image"):
        render(spec)


@pytest.mark.parametrize(
    ("prompt", "kind", "time", "weather"),
    [
        ("Waves rolling onto a beach at sunset", Kind.OCEAN, TimeOfDay.SUNSET, None),
        ("A neon city street, rain at night", Kind.CITY, TimeOfDay.NIGHT, Weather.RAIN),
        ("Pine forest at dawn", Kind.FOREST, TimeOfDay.DAWN, None),
        ("Snowy mountains", Kind.SNOW, None, Weather.SNOW),
        ("A campfire with sparks", Kind.FIRE, None, Weather.EMBERS),
        ("Sand dunes at noon", Kind.DESERT, TimeOfDay.DAY, None),
        ("An astronaut above a planet", Kind.SPACE, None, None),
    ],
)
def test_scene_words_pick_the_scene(
    prompt: str, kind: Kind, time: TimeOfDay | None, weather: Weather | None
) -> None:
    scene = scene_from_prompt(prompt, seed=0)
    assert scene.kind is kind
    assert time is None or scene.time is time
    assert weather is None or scene.weather is weather


def test_remixes_and_extensions_keep_the_layout_and_apply_their_words() -> None:
    base = scene_from_prompt("a sunny meadow", seed=3)
    remix = remix_scene(base, "now at night in the snow", seed=3)
    assert (remix.kind, remix.layout_seed, remix.pan) == (base.kind, base.layout_seed, base.pan)
    assert (remix.time, remix.weather) == (TimeOfDay.NIGHT, Weather.SNOW)
    assert remix.hue_shift != base.hue_shift
    assert continue_scene(base, "the hills roll on") == base
    assert continue_scene(base, "then it rains").weather is Weather.RAIN
