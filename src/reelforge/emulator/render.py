"""Render the emulator's videos: a prompt-driven animated scene as H.264 MP4, with previews."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont, ImageOps

from reelforge.emulator.canvas import Geometry, Layer, even
from reelforge.emulator.lands import layers
from reelforge.emulator.palette import RGB, Palette, mix, palette_of
from reelforge.emulator.scene import Scene, continue_scene, remix_scene, scene_from_prompt
from reelforge.emulator.swarms import Swarm, swarms

FPS = 24
CRF = 23
THUMBNAIL_DIVISOR = 2  # the thumbnail is the video frame at half its width and height
SPRITE_COLUMNS = 5
SPRITE_ROWS = 5
SPRITE_TILE_LONG_EDGE = 256
MIN_SIDE = 160  # smaller frames have no room for the prompt card

# A reference image holds, then cross-fades into the scene; an extension cross-fades from the
# shot it continues (both measured in frames).
_HOLD_FRAMES = round(0.75 * FPS)
_FADE_FRAMES = round(0.75 * FPS)

U8 = NDArray[np.uint8]
Planes = tuple[U8, U8, U8]
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
    video: bytes  # MP4, H.264 yuv420p, BT.709 limited range, FPS frames per second
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
    encoder = _Encoder(spec.width, spec.height)
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


# --- colour --------------------------------------------------------------------------------


def rgb_to_yuv(rgb: U8) -> Planes:
    """BT.709 limited-range 4:2:0 planes, in 16-bit integer arithmetic (fast, same everywhere)."""
    r, g, b = (rgb[..., k].astype(np.uint16) for k in range(3))
    y = r * 47
    y += g * 157
    y += b * 16
    y += 16 * 256 + 128
    y >>= 8
    r, g, b = _pool_mean(r), _pool_mean(g), _pool_mean(b)
    # The offsets keep every intermediate positive, so unsigned 16 bits never wrap.
    u = b * 112
    u += 128 * 256 + 128
    u -= r * 26
    u -= g * 86
    u >>= 8
    v = r * 112
    v += 128 * 256 + 128
    v -= g * 102
    v -= b * 10
    v >>= 8
    return y.astype(np.uint8), u.astype(np.uint8), v.astype(np.uint8)


def yuv_to_rgb(y: U8, u: U8, v: U8) -> U8:
    """The inverse of `rgb_to_yuv` for planes of equal size (previews only)."""
    yf = (y.astype(np.float32) - 16.0) * 1.16438
    uf = u.astype(np.float32) - 128.0
    vf = v.astype(np.float32) - 128.0
    rgb = np.stack((yf + 1.79274 * vf, yf - 0.21325 * uf - 0.53291 * vf, yf + 2.11240 * uf), -1)
    out: U8 = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return out


def _pool_mean(channel: NDArray[np.uint16]) -> NDArray[np.uint16]:
    total = channel[0::2, 0::2] + channel[1::2, 0::2]
    total += channel[0::2, 1::2]
    total += channel[1::2, 1::2]
    total += 2
    total >>= 2
    return total


def _color_yuv(color: RGB) -> tuple[int, int, int]:
    y, u, v = rgb_to_yuv(np.array([[color] * 2] * 2, dtype=np.uint8))
    return int(y[0, 0]), int(u[0, 0]), int(v[0, 0])


def _blend(dst: Planes, src: Planes, weight: int) -> None:
    """dst moves toward src by weight/128."""
    for d, s in zip(dst, src, strict=True):
        delta = s.astype(np.int16) - d
        delta *= weight
        delta >>= 7
        delta += d
        d[...] = delta


# --- geometry and the layers of a shot ----------------------------------------------------------


@dataclass(frozen=True)
class _Strip:
    """Rows of a horizontally repeating panorama that slide past the camera."""

    planes: Planes  # rows top..end, width period + frame width (Y; chroma at half)
    keeps: tuple[U8, U8] | None  # rows top..min(solid, end): 255 where what lies behind shows
    top: int
    solid: int  # from this row down the strip is opaque
    end: int  # nearer strips hide everything from here down
    speed: float  # pixels per second; positive slides the content leftward
    period: int

    def draw(self, out: Planes, t: float) -> None:
        offset = round(self.speed * t) % self.period
        for k, dst in enumerate(out):
            shift = min(k, 1)
            src, o, width = self.planes[k], offset >> shift, dst.shape[1]
            top, solid, end = self.top >> shift, self.solid >> shift, self.end >> shift
            if self.keeps is not None and min(solid, end) > top:
                rows = min(solid, end) - top
                keep = self.keeps[shift][:rows, o : o + width]
                _cover(dst[top : top + rows], src[:rows, o : o + width], keep)
            if end > solid:
                dst[solid:end] = src[solid - top : end - top, o : o + width]


def _cover(dst: U8, src: U8, keep: U8) -> None:
    """dst = src where the strip is, else unchanged; `src` is zero where `keep` is 255.

    Bitwise on 2- or 4-byte words: several times faster than a masked copy.
    """
    word = np.uint32 if dst.shape[1] % 4 == 0 else np.uint16
    covered = dst.view(word)
    np.bitwise_and(covered, keep.view(word), out=covered)
    np.bitwise_or(covered, src.view(word), out=covered)


@dataclass(frozen=True)
class _Piece:
    """A layer as YUV planes, before nearer layers decide how much of it ever shows."""

    planes: Planes
    masks: tuple[NDArray[np.bool_], NDArray[np.bool_]] | None
    top: int
    solid: int
    end: int
    depth: float


def _strips(layers: Sequence[Layer], geo: Geometry, pan: float) -> list[_Strip]:
    pieces = [piece for layer in layers for piece in _pieces(layer, geo)]
    strips: list[_Strip] = []
    hidden_from = geo.height
    for piece in reversed(pieces):
        end = min(piece.end, hidden_from)
        hidden_from = min(hidden_from, piece.solid)
        if end > piece.top:
            strips.append(_strip(piece, end, pan * geo.unit * piece.depth, geo.period))
    return strips[::-1]


def _pieces(layer: Layer, geo: Geometry) -> Iterator[_Piece]:
    planes = _wrapped(rgb_to_yuv(layer.rgb), geo.width)
    if layer.mask is None:
        edges = np.linspace(layer.top, geo.height, layer.bands + 1)
        for i in range(layer.bands):
            top, end = even(edges[i]), even(edges[i + 1])
            depth = layer.depth * (0.4 + 0.6 * (i + 1) / layer.bands)
            rel = top - layer.top
            yield _Piece(_rows(planes, rel, end - layer.top), None, top, top, end, depth)
        return
    mask = np.concatenate((layer.mask, layer.mask[:, : geo.width]), axis=1)
    open_rows = np.flatnonzero(~mask.all(axis=1))
    solid = layer.top + (even(open_rows[-1] + 2) if open_rows.size else 0)
    rows = solid - layer.top
    chroma = _pool_mean(mask[:rows].astype(np.uint16) * 4) >= 2
    yield _Piece(planes, (mask[:rows], chroma), layer.top, solid, geo.height, layer.depth)


def _wrapped(planes: Planes, width: int) -> Planes:
    """Planes with their first `width` columns repeated at the end, so any window is one slice."""
    y, u, v = planes
    half = width // 2
    return (
        np.concatenate((y, y[:, :width]), axis=1),
        np.concatenate((u, u[:, :half]), axis=1),
        np.concatenate((v, v[:, :half]), axis=1),
    )


def _rows(planes: Planes, start: int, stop: int) -> Planes:
    y, u, v = planes
    return y[start:stop], u[start // 2 : stop // 2], v[start // 2 : stop // 2]


def _strip(piece: _Piece, end: int, speed: float, period: int) -> _Strip:
    y, u, v = (p.copy() for p in _rows(piece.planes, 0, end - piece.top))
    keeps = None
    if piece.masks is not None:
        rows = min(piece.solid, end) - piece.top
        luma, chroma = piece.masks[0][:rows], piece.masks[1][: rows // 2]
        # Zero the uncovered pixels once, so drawing is a bitwise AND then OR (see _cover).
        y[:rows][~luma] = 0
        u[: rows // 2][~chroma] = 0
        v[: rows // 2][~chroma] = 0
        keeps = (np.where(luma, 0, 255).astype(np.uint8), np.where(chroma, 0, 255).astype(np.uint8))
    return _Strip((y, u, v), keeps, piece.top, piece.solid, end, speed, period)


# --- particles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sprite:
    dy: NDArray[np.intp]
    dx: NDArray[np.intp]
    weight: NDArray[np.int32]  # 0..256

    @staticmethod
    def of(alpha: NDArray[np.float64]) -> _Sprite:
        ys, xs = np.nonzero(alpha > 0.02)
        weight = np.rint(alpha[ys, xs] * 256).astype(np.int32)
        return _Sprite(ys - alpha.shape[0] // 2, xs - alpha.shape[1] // 2, weight)


def _sprites(alpha: NDArray[np.float64]) -> tuple[_Sprite, _Sprite]:
    """The sprite for the luma plane and the half-size one for the chroma planes."""
    height, width = alpha.shape
    image = Image.fromarray(np.clip(alpha * 255, 0, 255).astype(np.uint8))
    half = image.resize((max(1, (width + 1) // 2), max(1, (height + 1) // 2)), Image.Resampling.BOX)
    return _Sprite.of(alpha), _Sprite.of(np.asarray(half, np.float64) / 255)


@dataclass(frozen=True)
class _Particles:
    """A swarm, ready to stamp into YUV planes."""

    swarm: Swarm
    sprites: tuple[_Sprite, _Sprite]  # luma, chroma
    color: tuple[int, int, int]

    @staticmethod
    def of(swarm: Swarm) -> _Particles:
        return _Particles(swarm, _sprites(swarm.shape), _color_yuv(swarm.color))

    def draw(self, out: Planes, t: float) -> None:
        x, y, level = self.swarm.at(t)
        amp = (level * 256).astype(np.int32)
        xi, yi = np.rint(x).astype(np.intp), np.rint(y).astype(np.intp)
        for k, plane in enumerate(out):
            shift = min(k, 1)
            _stamp(plane, xi >> shift, yi >> shift, amp, self.sprites[shift], self.color[k])


def _stamp(
    plane: U8,
    xs: NDArray[np.intp],
    ys: NDArray[np.intp],
    amp: NDArray[np.int32],
    sprite: _Sprite,
    value: int,
) -> None:
    px = xs[:, None] + sprite.dx
    py = ys[:, None] + sprite.dy
    weight = (amp[:, None] * sprite.weight) >> 8
    inside = (px >= 0) & (px < plane.shape[1]) & (py >= 0) & (py < plane.shape[0]) & (weight > 0)
    px, py, weight = px[inside], py[inside], weight[inside]
    current = plane[py, px].astype(np.int32)
    plane[py, px] = current + (((value - current) * weight) >> 8)


# --- the prompt card --------------------------------------------------------------------------

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class _Overlay:
    """A fixed translucent picture, blended with precomputed weights (premultiplied colour)."""

    x: int
    y: int
    keep: tuple[NDArray[np.uint16], NDArray[np.uint16]]  # 256 - alpha, luma and chroma size
    premultiplied: tuple[NDArray[np.uint16], NDArray[np.uint16], NDArray[np.uint16]]

    @staticmethod
    def of(rgba: U8, x: int, y: int) -> _Overlay:
        alpha = (rgba[..., 3].astype(np.uint16) * 256 + 127) // 255
        chroma_alpha = _pool_mean(alpha)
        y_plane, u_plane, v_plane = rgb_to_yuv(np.ascontiguousarray(rgba[..., :3]))
        weights = (alpha, chroma_alpha)
        premultiplied = tuple(
            p.astype(np.uint16) * weights[min(k, 1)]
            for k, p in enumerate((y_plane, u_plane, v_plane))
        )
        return _Overlay(
            x,
            y,
            (256 - weights[0], 256 - weights[1]),
            (premultiplied[0], premultiplied[1], premultiplied[2]),
        )

    def draw(self, out: Planes) -> None:
        for k, plane in enumerate(out):
            shift = min(k, 1)
            pre = self.premultiplied[k]
            y, x = self.y >> shift, self.x >> shift
            region = plane[y : y + pre.shape[0], x : x + pre.shape[1]]
            mixed = region * self.keep[shift]
            mixed += pre
            mixed >>= 8
            region[...] = mixed


def _card(prompt: str, label: str, pal: Palette, geo: Geometry) -> _Overlay:
    size = max(12, round(geo.unit * 0.04))
    font, small = (
        ImageFont.load_default(size=size),
        ImageFont.load_default(size=max(9, round(size * 0.55))),
    )
    margin, pad = even(geo.unit * 0.045), round(size * 0.7)
    landscape = geo.width > geo.height
    width = even(
        min(geo.width - 2 * margin, geo.width * 0.62) if landscape else geo.width - 2 * margin
    )
    line_height, label_height = round(size * 1.3), round(size * 1.05)
    # At most half the frame's height, however small the frame.
    room = (geo.height // 2 - pad * 1.6 - label_height) // line_height
    lines = _wrap(prompt, font, width - 2 * pad, max(1, min(3 if landscape else 5, int(room))))
    height = even(pad * 1.6 + label_height + line_height * len(lines))
    card = Image.new("RGBA", (width, height))
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=size * 0.5, fill=(*pal.card, 176))
    draw.text(
        (pad, pad * 0.8),
        label.upper(),
        font=small,
        fill=(*mix(pal.accent, (255, 255, 255), 0.45), 255),
    )
    shadow = max(1, size // 16)
    for i, line in enumerate(lines):
        at = (pad, pad * 0.8 + label_height + i * line_height)
        draw.text((at[0] + shadow, at[1] + shadow), line, font=font, fill=(0, 0, 0, 200))
        draw.text(at, line, font=font, fill=(255, 255, 255, 255))
    return _Overlay.of(np.asarray(card), margin, even(geo.height - margin - height))


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most `max_lines`, ending in an ellipsis when the text is cut."""
    # No glyph is narrower than a pixel, so this much text always fills the card; measuring
    # all of a 32,000-character prompt would only cost time.
    words = iter(text[: max_lines * int(width)].split())
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width and len(lines) < max_lines:
            cut = _fitting(current, font, width)
            lines.append(current[:cut])
            current = current[cut:]
        if len(lines) >= max_lines:
            return _ellipsized(lines[:max_lines], font, width)
    if current:
        lines.append(current)
    return lines if len(lines) <= max_lines else _ellipsized(lines[:max_lines], font, width)


def _fitting(word: str, font: Font, width: float) -> int:
    """How many leading characters of `word` fit in `width` (at least one); a binary search."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(word[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _ellipsized(lines: list[str], font: Font, width: float) -> list[str]:
    last = lines[-1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return [*lines[:-1], last.rstrip() + "…"]


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


def _scene_of(spec: RenderSpec) -> Scene:
    if spec.parent is not None:
        return remix_scene(_parts(spec.parent)[-1].scene, spec.prompt, spec.seed)
    return scene_from_prompt(spec.prompt, spec.seed)


@dataclass(frozen=True)
class _View:
    """A scene drawn at one size, with one prompt card over it."""

    scene: Scene
    strips: list[_Strip]
    particles: list[_Particles]
    card: _Overlay

    @staticmethod
    def of(part: _Part, width: int, height: int, previous: _View | None) -> _View:
        scene = part.scene
        geo = Geometry.of(width, height, scene)
        pal = palette_of(scene)
        if previous is not None and previous.scene == scene:
            strips, particles = previous.strips, previous.particles
        else:
            strips = _strips(layers(scene, geo), geo, scene.pan)
            particles = [_Particles.of(swarm) for swarm in swarms(scene, geo)]
        card = _card(part.spec.prompt, f"Reelforge emulator · {scene.label}", pal, geo)
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
        _blend(out, opening, 128 - 128 * (local - _HOLD_FRAMES + 1) // (_FADE_FRAMES + 1))
    elif previous is not None and local < _FADE_FRAMES:
        previous.draw(scratch, t)
        _blend(out, scratch, 128 - 128 * (local + 1) // (_FADE_FRAMES + 1))


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
    """H.264 into an in-memory MP4 whose index comes first, so browsers can stream it."""

    def __init__(self, width: int, height: int) -> None:
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

    def _reopen(self, url: str, flags: int, options: dict[str, Any]) -> io.BytesIO:
        # +faststart reads the finished file back to move the index to the front.
        return io.BytesIO(self._buffer.getvalue())

    def push(self, frame: av.VideoFrame) -> None:
        self._container.mux(self._stream.encode(frame))

    def finish(self) -> bytes:
        self._container.mux(self._stream.encode(None))
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
