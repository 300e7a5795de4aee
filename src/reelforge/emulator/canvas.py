"""Drawing primitives the emulator's artwork shares: the shot's geometry, layers and masks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from reelforge.emulator.palette import RGB
from reelforge.emulator.scene import Kind, Scene, TimeOfDay, unit

U8 = NDArray[np.uint8]
Offsets = NDArray[np.float64]


@dataclass(frozen=True)
class Geometry:
    width: int
    height: int
    unit: int  # the short side: sizes scale with it so every aspect ratio looks alike
    period: int  # panoramas repeat every `period` columns, so pans never run out
    horizon: int

    @staticmethod
    def of(width: int, height: int, scene: Scene) -> Geometry:
        low, high = (0.56, 0.64) if width >= height else (0.5, 0.58)
        horizon = height * (low + (high - low) * unit(scene.layout_seed, "horizon"))
        return Geometry(width, height, min(width, height), 2 * width, even(horizon))


def even(value: float) -> int:
    return 2 * math.floor(value / 2)


SKY_DEPTH = 0.12


@dataclass(frozen=True)
class Layer:
    """One drawn panorama layer, before it is cut into strips."""

    rgb: U8  # rows top..height, width period
    mask: NDArray[np.bool_] | None  # None: opaque
    top: int
    depth: float  # 0 is infinitely far, 1 the nearest ground: how fast it pans
    bands: int = 1  # water pans faster band by band toward the camera, for perspective


def rng_for(scene: Scene, name: str) -> np.random.Generator:
    # One stream per element, so a remix that adds stars does not move the hills.
    return np.random.default_rng(int(unit(scene.layout_seed, name) * 2**63))


def noise(rng: np.random.Generator, period: int, harmonics: tuple[int, int]) -> NDArray[np.float64]:
    """A smooth curve over `period` columns that joins up with itself, in [-1, 1]."""
    x = np.arange(period) * (2 * math.pi / period)
    curve = np.zeros(period)
    for k in range(harmonics[0], harmonics[1] + 1):
        curve += rng.normal() / k * np.sin(k * x + rng.uniform(0, 2 * math.pi))
    peak = float(np.abs(curve).max())
    return curve / peak if peak else curve


def ridge(
    geo: Geometry,
    rng: np.random.Generator,
    level: float,
    amplitude: float,
    harmonics: tuple[int, int] = (2, 9),
    sharp: bool = False,
) -> NDArray[np.float64]:
    """Row of the skyline per column: `level` and `amplitude` are fractions of the height."""
    curve = noise(rng, geo.period, harmonics)
    shape = 1 - np.abs(curve) if sharp else (curve + 1) / 2
    return geo.horizon + geo.height * (level - amplitude * shape)


def ground_layer(
    geo: Geometry,
    heights: NDArray[np.float64],
    colors: tuple[RGB, RGB],
    depth: float,
    shade: NDArray[np.float64] | None = None,
    crest: float | None = None,
) -> Layer:
    """Fill below `heights` with a vertical gradient between `colors`.

    `shade` scales each column's brightness: everywhere, or with `crest` (a fraction of the
    height) only near the top edge, fading below it.
    """
    top = even(max(0.0, float(heights.min())))
    rows = np.arange(top, geo.height, dtype=np.float32)
    mask = rows[:, None] >= heights[None, :]
    fraction = (rows - top) / max(1, geo.height - top)
    start, stop = np.array(colors[0], np.float32), np.array(colors[1], np.float32)
    gradient = start + (stop - start) * fraction[:, None]
    column = np.rint(gradient).astype(np.uint16)[:, None, :]
    if shade is None:
        return Layer(np.repeat(column.astype(np.uint8), geo.period, axis=1), mask, top, depth)
    if crest is None:
        # 7-bit fixed point keeps the product inside 16 bits.
        scaled = column * np.rint(shade * 128).astype(np.uint16)[None, :, None]
        scaled >>= 7
        return Layer(np.minimum(scaled, 255).astype(np.uint8), mask, top, depth)
    # Light catches the crest and fades below it, so slopes read as faces, not stripes.
    below = np.clip(rows[:, None] - heights[None, :].astype(np.float32), 0, None)
    weight = np.exp(below * np.float32(-1.0 / (crest * geo.height)))
    factor = 1 + (shade.astype(np.float32)[None, :] - 1) * weight
    rgb = gradient[:, None, :] * factor[..., None]
    return Layer(np.clip(rgb, 0, 255).astype(np.uint8), mask, top, depth)


def sky_gradient(geo: Geometry, top: RGB, horizon: RGB) -> U8:
    rows = np.arange(geo.height, dtype=np.float64)
    fraction = np.clip(rows / geo.horizon, 0, 1) ** 1.6
    start, stop = np.array(top, np.float64), np.array(horizon, np.float64)
    column = (start + (stop - start) * fraction[:, None]).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(column[:, None, :], (geo.height, geo.period, 3)))


def soft_mask(
    geo: Geometry, rows: int, draw: Callable[[ImageDraw.ImageDraw, int], None], blur: float
) -> NDArray[np.float32]:
    """A blurred 0..1 mask over `rows` x period, drawn at quarter size so the blur is cheap.

    `draw` gets the quarter-size canvas and its width; the canvas wraps, so draw at x and x - width.
    """
    width, height = geo.period // 4, max(1, rows // 4)
    canvas = Image.new("L", (width, height))
    draw(ImageDraw.Draw(canvas), width)
    tiled = Image.fromarray(np.tile(np.asarray(canvas), (1, 3)))
    blurred = tiled.filter(ImageFilter.GaussianBlur(blur / 4)).crop((width, 0, 2 * width, height))
    full = blurred.resize((geo.period, rows), Image.Resampling.BICUBIC)
    return np.asarray(full, dtype=np.float32) / 255.0


def blend(rgb: U8, alpha: NDArray[np.float32], color: RGB) -> None:
    """Blend `color` over the top rows of `rgb` by `alpha` (0..1)."""
    region = rgb[: alpha.shape[0]]
    weight = np.rint(alpha * 128).astype(np.int16)[..., None]
    delta = np.array(color, np.int16) - region
    delta *= weight
    delta >>= 7
    delta += region
    region[...] = delta


def sun_place(geo: Geometry, scene: Scene) -> tuple[float, float, float]:
    """Centre column, centre row and radius of the sun (or moon)."""
    x = geo.width * (0.22 + 0.56 * unit(scene.layout_seed, "sun-x"))
    height = {
        TimeOfDay.DAY: 0.45,
        TimeOfDay.NIGHT: 0.55,
        TimeOfDay.DAWN: 0.24,
        TimeOfDay.SUNSET: 0.18,
    }
    mountains = 0.14 if scene.kind in (Kind.FOREST, Kind.SNOW, Kind.FIRE) else 0.0
    y = geo.horizon * (1 - height[scene.time] - mountains - 0.15 * unit(scene.layout_seed, "sun-y"))
    radius = geo.unit * (0.045 if scene.time is TimeOfDay.NIGHT else 0.065)
    return x, y, radius


def region_near(rgb: U8, cx: float, cy: float, reach: float) -> tuple[U8, Offsets, Offsets] | None:
    """The part of `rgb` within `reach` of (cx, cy), with column and row offsets from it."""
    height, width = rgb.shape[:2]
    x0, x1 = max(0, int(cx - reach)), min(width, int(cx + reach) + 1)
    y0, y1 = max(0, int(cy - reach)), min(height, int(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float64) - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float64) - cy)[:, None]
    return rgb[y0:y1, x0:x1], dx, dy
