"""Render the emulator's videos: a prompt-driven animated scene and its sound, with previews."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from reelforge.emulator.canvas import Geometry
from reelforge.emulator.card import Overlay, prompt_card
from reelforge.emulator.lands import layers
from reelforge.emulator.motion import Particles, Strip, strips_of
from reelforge.emulator.palette import palette_of
from reelforge.emulator.planes import (
    Planes,
    blend_planes,
    rgb_to_yuv,
    yuv_to_rgb,
)
from reelforge.emulator.scene import Scene, continue_scene, remix_scene, scene_from_prompt
from reelforge.emulator.sound import SAMPLE_RATE, Samples, Shot, soundtrack
from reelforge.emulator.swarms import swarms

FPS = 24
CRF = 23
THUMBNAIL_DIVISOR = 2  # the thumbnail is the video frame at half its width and height
SPRITE_COLUMNS = 5
SPRITE_ROWS = 5
SPRITE_TILE_LONG_EDGE = 256
MIN_SIDE = 160  # smaller frames have no room for the prompt card
_AAC_FRAME = 1024  # samples the AAC encoder takes at a time

# A reference image holds, then cross-fades into the scene; an extension cross-fades from the
# shot it continues (both measured in frames).
_HOLD_FRAMES = round(0.75 * FPS)
_FADE_FRAMES = round(0.75 * FPS)

Progress = Callable[[float], None]


@dataclass(frozen=True)
class RenderSpec:
    """One video to render; remixes and extensions name the spec they derive from."""

    prompt: str
    width: int  # multiples of 4, at least MIN_SIDE; the catalog's sizes all are
    height: int
    seconds: int
    seed: int = 0
    # Remix: the parent's shot (layout, palette family, motion), changed by this prompt.
    parent: RenderSpec | None = None
    # Extension: that video's frames, then `seconds` more of its shot, changed only by the words
    # of this prompt that name a time of day, weather or colour (`parent` is then unused).
    extends: RenderSpec | None = None
    # PNG, JPEG or WebP; held for the first 0.75 s of this spec's own segment, then dissolved
    # into the scene. Another size is cropped to fill the frame.
    reference_image: bytes | None = None

    @property
    def total_seconds(self) -> int:
        return self.seconds + (self.extends.total_seconds if self.extends else 0)


@dataclass(frozen=True)
class RenderedAssets:
    video: bytes  # MP4: H.264 yuv420p, BT.709 limited range, FPS frames per second; AAC mono
    thumbnail: bytes  # WebP of the middle frame at 1/THUMBNAIL_DIVISOR of the video's size
    spritesheet: bytes  # JPEG, SPRITE_COLUMNS x SPRITE_ROWS evenly spaced frames, row-major


def render(spec: RenderSpec, progress: Progress | None = None) -> RenderedAssets:
    """Render `spec`; blocking, so call it off the event loop.

    `progress(fraction)` is called with increasing values in [0, 1] while encoding, ending
    with 1.0.
    """
    _validate(spec)
    total = spec.total_seconds * FPS
    previews = _Previews(spec.width, spec.height, total)
    report = _Reporter(progress, total)
    encoder = _Encoder(spec.width, spec.height, _sound(spec))
    try:
        for index, planes, frame in _frames(spec):
            previews.offer(index, planes)
            encoder.push(frame)
            report.frame_done(index)
    except BaseException:
        encoder.abandon()
        raise
    video = encoder.finish()
    assets = RenderedAssets(
        video=video, thumbnail=previews.thumbnail(), spritesheet=previews.sheet()
    )
    report.done()
    return assets


def _validate(spec: RenderSpec) -> None:
    small = min(spec.width, spec.height) < MIN_SIDE
    if small or spec.width % 4 or spec.height % 4:
        raise ValueError(
            f"size must be multiples of 4, at least {MIN_SIDE}, got {spec.width}x{spec.height}"
        )
    if spec.seconds <= 0:
        raise ValueError(f"seconds must be positive, got {spec.seconds}")
    for base in (spec.parent, spec.extends):
        if base is not None and (base.width, base.height) != (spec.width, spec.height):
            raise ValueError("a remix or extension keeps its source's size")


# --- a part of the video, frame by frame -----------------------------------------------------


@dataclass(frozen=True)
class _Part:
    spec: RenderSpec  # whose `seconds` and prompt this part shows
    scene: Scene
    start: int  # first frame, counted from the start of the whole video


def _parts(spec: RenderSpec) -> list[_Part]:
    if spec.extends is None:
        return [_Part(spec, _scene_of(spec), 0)]
    before = _parts(spec.extends)
    last = before[-1]
    scene = continue_scene(last.scene, spec.prompt)
    return [*before, _Part(spec, scene, last.start + last.spec.seconds * FPS)]


def _sound(spec: RenderSpec) -> Samples:
    """The soundtrack, cut and cross-faded where the picture is (sound.py)."""
    per_frame = SAMPLE_RATE // FPS
    shots = [
        Shot(part.scene, part.start * per_frame, part.spec.seconds * SAMPLE_RATE)
        for part in _parts(spec)
    ]
    return soundtrack(shots, _FADE_FRAMES * per_frame)


def _scene_of(spec: RenderSpec) -> Scene:
    if spec.parent is not None:
        return remix_scene(_parts(spec.parent)[-1].scene, spec.prompt, spec.seed)
    return scene_from_prompt(spec.prompt, spec.seed)


@dataclass(frozen=True)
class _View:
    """A scene drawn at one size, with one prompt card over it."""

    scene: Scene
    strips: list[Strip]
    particles: list[Particles]
    card: Overlay

    @staticmethod
    def of(part: _Part, width: int, height: int, previous: _View | None) -> _View:
        scene = part.scene
        geo = Geometry.of(width, height, scene)
        pal = palette_of(scene)
        if previous is not None and previous.scene == scene:
            strips, particles = previous.strips, previous.particles
        else:
            strips = strips_of(layers(scene, geo), geo, scene.pan)
            particles = [Particles.of(swarm) for swarm in swarms(scene, geo)]
        card = prompt_card(part.spec.prompt, f"Reelforge emulator · {scene.label}", pal, geo)
        return _View(scene, strips, particles, card)

    def draw(self, out: Planes, t: float) -> None:
        for strip in self.strips:
            strip.draw(out, t)
        for swarm in self.particles:
            swarm.draw(out, t)
        self.card.draw(out)


def _frames(spec: RenderSpec) -> Iterator[tuple[int, Planes, av.VideoFrame]]:
    """Every frame of the video in order, with numpy views of its planes."""
    width, height = spec.width, spec.height
    scratch = (
        np.empty((height, width), np.uint8),
        np.empty((height // 2, width // 2), np.uint8),
        np.empty((height // 2, width // 2), np.uint8),
    )
    view: _View | None = None
    for part in _parts(spec):
        previous, view = view, _View.of(part, width, height, view)
        opening = _picture(part.spec.reference_image, width, height)
        for local in range(part.spec.seconds * FPS):
            frame = av.VideoFrame(width, height, "yuv420p")
            planes = _planes_of(frame)
            _compose(planes, scratch, part.start + local, local, view, previous, opening)
            frame.pts = part.start + local
            yield part.start + local, planes, frame


def _compose(
    out: Planes,
    scratch: Planes,
    index: int,
    local: int,
    view: _View,
    previous: _View | None,
    opening: Planes | None,
) -> None:
    t = index / FPS
    if opening is not None and local < _HOLD_FRAMES:
        for dst, src in zip(out, opening, strict=True):
            dst[...] = src
        return
    view.draw(out, t)
    if opening is not None and local < _HOLD_FRAMES + _FADE_FRAMES:
        blend_planes(out, opening, 128 - 128 * (local - _HOLD_FRAMES + 1) // (_FADE_FRAMES + 1))
    elif previous is not None and local < _FADE_FRAMES:
        previous.draw(scratch, t)
        blend_planes(out, scratch, 128 - 128 * (local + 1) // (_FADE_FRAMES + 1))


def _planes_of(frame: av.VideoFrame) -> Planes:
    y, u, v = (
        np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[
            :, : plane.width
        ]
        for plane in frame.planes
    )
    return y, u, v


def _picture(data: bytes | None, width: int, height: int) -> Planes | None:
    """The reference image as planes, cropped to fill the frame if its size differs."""
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP")) as image:
            picture = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, SyntaxError) as error:  # Pillow's ways of saying "not an image it can read"
        raise ValueError("reference_image is not a readable PNG, JPEG or WebP image") from error
    if picture.size != (width, height):
        picture = ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS)
    return rgb_to_yuv(np.asarray(picture))


# --- encoding and previews -------------------------------------------------------------------


class _Encoder:
    """H.264 and AAC into an in-memory MP4 whose index comes first, so browsers can stream it;
    each frame's sound is encoded with it, so the two are interleaved as a player reads them."""

    def __init__(self, width: int, height: int, sound: Samples) -> None:
        self._buffer = io.BytesIO()
        self._container = av.open(
            self._buffer,
            "w",
            format="mp4",
            options={"movflags": "+faststart", "fflags": "+bitexact"},
            io_open=self._reopen,
        )
        stream = self._container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        context = stream.codec_context
        context.color_range = 1  # limited ("MPEG") range, BT.709, as rgb_to_yuv makes them
        context.colorspace = context.color_primaries = context.color_trc = 1
        context.gop_size = 2 * FPS
        # One thread, fixed settings: the same frames always give the same bytes.
        stream.options = {"preset": "ultrafast", "crf": str(CRF), "threads": "1"}
        self._stream = stream
        self._audio = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        self._audio.options = {"threads": "1"}
        self._sound = sound
        self._heard = 0  # samples encoded so far

    def _reopen(self, url: str, flags: int, options: dict[str, Any]) -> io.BytesIO:
        # +faststart reads the finished file back to move the index to the front.
        return io.BytesIO(self._buffer.getvalue())

    def push(self, frame: av.VideoFrame) -> None:
        self._container.mux(self._stream.encode(frame))
        self._hear(((frame.pts or 0) + 1) * SAMPLE_RATE // FPS)

    def _hear(self, until: int, *, to_the_end: bool = False) -> None:
        """Encode the sound up to sample `until` in whole AAC frames; only the very last frame
        of the sound may be shorter."""
        while self._heard + _AAC_FRAME <= until or (to_the_end and self._heard < until):
            chunk = self._sound[self._heard : self._heard + _AAC_FRAME]
            frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, self._heard
            self._container.mux(self._audio.encode(frame))
            self._heard += len(chunk)

    def finish(self) -> bytes:
        self._hear(len(self._sound), to_the_end=True)
        self._container.mux(self._stream.encode(None))
        self._container.mux(self._audio.encode(None))
        self._container.close()
        return self._buffer.getvalue()

    def abandon(self) -> None:
        self._container.close()


class _Previews:
    """Collects the thumbnail and the spritesheet tiles as their frames go by."""

    def __init__(self, width: int, height: int, total: int) -> None:
        self._thumb_size = (width // THUMBNAIL_DIVISOR, height // THUMBNAIL_DIVISOR)
        self._thumb_index = total // 2
        self._thumb: Image.Image | None = None
        scale = SPRITE_TILE_LONG_EDGE / max(width, height)
        self._tile = (round(width * scale), round(height * scale))
        tiles = SPRITE_COLUMNS * SPRITE_ROWS
        self._tiles: dict[int, list[int]] = {}
        for k in range(tiles):
            self._tiles.setdefault(min(total - 1, (2 * k + 1) * total // (2 * tiles)), []).append(k)
        self._sheet = Image.new(
            "RGB", (self._tile[0] * SPRITE_COLUMNS, self._tile[1] * SPRITE_ROWS)
        )

    def offer(self, index: int, planes: Planes) -> None:
        if index == self._thumb_index:
            self._thumb = _still(planes, self._thumb_size)
        for k in self._tiles.get(index, ()):
            row, column = divmod(k, SPRITE_COLUMNS)
            self._sheet.paste(
                _still(planes, self._tile), (column * self._tile[0], row * self._tile[1])
            )

    def thumbnail(self) -> bytes:
        assert self._thumb is not None
        out = io.BytesIO()
        self._thumb.save(out, "WEBP", quality=82, method=4)
        return out.getvalue()

    def sheet(self) -> bytes:
        out = io.BytesIO()
        self._sheet.save(out, "JPEG", quality=80)
        return out.getvalue()


def _still(planes: Planes, size: tuple[int, int]) -> Image.Image:
    resized = (
        np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BOX, reducing_gap=2.0))
        if p.shape[::-1] != size
        else p
        for p in planes
    )
    y, u, v = resized
    return Image.fromarray(yuv_to_rgb(y, u, v))


class _Reporter:
    """Calls `progress` at most once per percent, strictly increasing, 1.0 only at the end."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress, self._total, self._last = progress, total, 0

    def frame_done(self, index: int) -> None:
        percent = (index + 1) * 100 // self._total
        if self._progress is not None and self._last < percent < 100:
            self._last = percent
            self._progress(percent / 100)

    def done(self) -> None:
        if self._progress is not None:
            self._progress(1.0)
