"""The land layers under the sky, kind by kind: the panoramas a shot pans across."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from reelforge.emulator.canvas import (
    Geometry,
    Layer,
    blend,
    even,
    ground_layer,
    noise,
    ridge,
    rng_for,
    soft_mask,
)
from reelforge.emulator.palette import RGB, Palette, mix, palette_of, shaded
from reelforge.emulator.scene import Kind, Scene, TimeOfDay, Weather
from reelforge.emulator.sky import sky_layer


def layers(scene: Scene, geo: Geometry) -> list[Layer]:
    """The shot's panoramas, from the sky to the nearest ground."""
    pal = palette_of(scene)
    return [sky_layer(scene, pal, geo), *land_layers(scene, pal, geo)]


def land_layers(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    builders: dict[Kind, Callable[[Scene, Palette, Geometry], list[Layer]]] = {
        Kind.MEADOW: _meadow,
        Kind.FOREST: _forest,
        Kind.OCEAN: _ocean,
        Kind.CITY: _city,
        Kind.FIRE: _fire,
        Kind.SNOW: _snowfield,
        Kind.DESERT: _desert,
        Kind.SPACE: _moonscape,
    }
    return builders[scene.kind](scene, pal, geo)


def _meadow(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = ridge(geo, rng_for(scene, "far"), -0.01, 0.1, (2, 7))
    mid = ridge(geo, rng_for(scene, "mid"), 0.07, 0.08, (2, 8))
    near = ground_layer(
        geo,
        ridge(geo, rng_for(scene, "near"), 0.22, 0.09, (1, 6)),
        (pal.near, shaded(pal.near, 0.7)),
        1.0,
    )
    _flowers(near, geo, rng_for(scene, "flowers"), pal)
    return [
        ground_layer(geo, far, (pal.far, mix(pal.far, pal.mid, 0.3)), 0.3),
        ground_layer(geo, mid, (pal.mid, shaded(pal.mid, 0.75)), 0.6),
        near,
    ]


def _flowers(layer: Layer, geo: Geometry, rng: np.random.Generator, pal: Palette) -> None:
    assert layer.mask is not None
    rows, cols = layer.mask.shape
    count = int(geo.period * rows / geo.unit * 0.6)
    size = max(2, round(geo.unit / 300))
    ys = rng.integers(0, rows - size, count)
    xs = rng.integers(0, cols - size, count)
    keep = layer.mask[ys, xs] & (rng.random(count) < (ys / rows) ** 0.5)
    colors = np.array(
        [
            pal.accent,
            mix(pal.accent, (255, 255, 255), 0.6),
            mix(pal.accent, (255, 110, 150), 0.6),
        ],
        np.uint8,
    )
    paint = colors[rng.integers(0, 3, count)][keep]
    for dy in range(size):
        for dx in range(size):
            layer.rgb[ys[keep] + dy, xs[keep] + dx] = paint


def _trees(
    geo: Geometry,
    ground: NDArray[np.float64],
    rng: np.random.Generator,
    spacing: float,
    size: tuple[float, float],
) -> NDArray[np.float64]:
    """`ground` with pine silhouettes standing on it."""
    heights = ground.copy()
    x = 0.0
    while x < geo.period:
        tall = rng.uniform(*size) * geo.unit
        half = tall * rng.uniform(0.22, 0.3)
        cols = np.arange(int(x - half), int(x + half) + 1)
        dist = np.abs(cols - x)
        tiers = (dist % (half / 2.5)) * 0.6
        profile = ground[int(x) % geo.period] - tall + dist * (tall / half) - tiers
        wrapped = cols % geo.period
        heights[wrapped] = np.minimum(heights[wrapped], profile)
        x += spacing * geo.unit * rng.uniform(0.5, 1.5)
    return heights


def _wooded(
    geo: Geometry,
    ground: NDArray[np.float64],
    heights: NDArray[np.float64],
    colors: tuple[RGB, RGB],
    tree: RGB,
    depth: float,
) -> Layer:
    layer = ground_layer(geo, heights, colors, depth)
    assert layer.mask is not None
    rows = np.arange(layer.top, geo.height)[:, None]
    layer.rgb[layer.mask & (rows < ground[None, :])] = tree
    return layer


def _forest(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = ridge(geo, rng_for(scene, "far"), -0.03, 0.22, (2, 10), sharp=True)
    mid_ground = ridge(geo, rng_for(scene, "mid"), 0.05, 0.06)
    mid = _trees(geo, mid_ground, rng_for(scene, "mid-trees"), 0.022, (0.05, 0.09))
    near_ground = ridge(geo, rng_for(scene, "near"), 0.24, 0.05, (1, 5))
    near = _trees(geo, near_ground, rng_for(scene, "near-trees"), 0.07, (0.16, 0.3))
    return [
        ground_layer(geo, far, (pal.far, mix(pal.far, pal.mid, 0.25)), 0.3),
        _wooded(geo, mid_ground, mid, (pal.mid, shaded(pal.mid, 0.8)), shaded(pal.mid, 0.85), 0.6),
        _wooded(
            geo, near_ground, near, (pal.near, shaded(pal.near, 0.7)), shaded(pal.near, 0.8), 1.0
        ),
    ]


def _snowfield(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = ridge(geo, rng_for(scene, "far"), -0.03, 0.24, (2, 10), sharp=True)
    mid = ridge(geo, rng_for(scene, "mid"), 0.06, 0.08)
    near_ground = ridge(geo, rng_for(scene, "near"), 0.24, 0.05, (1, 5))
    near = _trees(geo, near_ground, rng_for(scene, "near-trees"), 0.16, (0.12, 0.22))
    pine = mix(shaded(pal.far, 0.45), (20, 60, 50), 0.5)
    return [
        ground_layer(geo, far, (pal.mid, pal.far), 0.3),
        ground_layer(geo, mid, (pal.mid, shaded(pal.mid, 0.92)), 0.6),
        _wooded(geo, near_ground, near, (pal.near, shaded(pal.near, 0.9)), pine, 1.0),
    ]


def _desert(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    layers = []
    for name, level, amplitude, colors, depth in (
        ("far", -0.01, 0.07, (pal.far, pal.far), 0.3),
        ("mid", 0.08, 0.1, (pal.mid, shaded(pal.mid, 0.9)), 0.6),
        ("near", 0.25, 0.1, (pal.near, shaded(pal.near, 0.85)), 1.0),
    ):
        heights = ridge(geo, rng_for(scene, name), level, amplitude, (1, 4))
        slope = np.gradient(heights) * (geo.period / geo.unit)
        shade = 1.0 - 0.3 * np.tanh(slope * 0.8)
        layers.append(ground_layer(geo, heights, colors, depth, shade, crest=0.1))
    return layers


def _moonscape(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = ridge(geo, rng_for(scene, "far"), 0.0, 0.12, (2, 9), sharp=True)
    near = ground_layer(
        geo, ridge(geo, rng_for(scene, "near"), 0.2, 0.04, (1, 5)), (pal.mid, pal.near), 1.0
    )
    _craters(near, geo, rng_for(scene, "craters"), pal)
    return [ground_layer(geo, far, (pal.far, shaded(pal.far, 0.8)), 0.3), near]


def _craters(layer: Layer, geo: Geometry, rng: np.random.Generator, pal: Palette) -> None:
    image = Image.fromarray(layer.rgb)
    draw = ImageDraw.Draw(image)
    rows = geo.height - layer.top
    for _ in range(int(geo.period / geo.unit * 6)):
        y = rows * rng.uniform(0.3, 0.95)
        rx = geo.unit * rng.uniform(0.02, 0.07) * (0.4 + y / rows)
        ry = rx * 0.28
        x = rng.uniform(0, geo.period)
        for cx in (x - geo.period, x, x + geo.period):
            draw.ellipse(
                (cx - rx, y - ry, cx + rx, y + ry),
                fill=shaded(pal.near, 0.7),
                outline=shaded(pal.mid, 1.25),
                width=max(1, round(ry / 5)),
            )
    layer.rgb[...] = np.asarray(image)


def _ocean(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    curve = noise(rng_for(scene, "far"), geo.period, (3, 10))
    islands = geo.horizon - geo.height * 0.09 * np.clip((curve - 0.3) / 0.7, 0, 1) ** 0.7
    return [ground_layer(geo, islands, (pal.far, pal.far), 0.3), _water(scene, pal, geo)]


def _water(scene: Scene, pal: Palette, geo: Geometry) -> Layer:
    rng = rng_for(scene, "waves")
    surface = mix(pal.sky_horizon, pal.mid, 0.45)
    layer = ground_layer(geo, np.full(geo.period, float(geo.horizon)), (surface, pal.near), 1.0)
    rgb, rows = layer.rgb, geo.height - geo.horizon
    light = np.array(mix(pal.sky_horizon, (255, 255, 255), 0.3), np.float64)
    for _ in range(int(geo.period * rows / geo.unit**2 * 900)):
        near = rng.random() ** 1.3
        y = int(near * (rows - 4))
        length = int(geo.unit * (0.01 + 0.06 * near) * rng.uniform(0.5, 1.5))
        thick = max(1, round(geo.unit / 720 * (1 + 3 * near)))
        x = int(rng.integers(0, geo.period))
        cols = np.arange(x, x + length) % geo.period
        base = rgb[y, x].astype(np.float64)
        rgb[y : y + thick, cols] = (base + (light - base) * rng.uniform(0.2, 0.55)).astype(np.uint8)
    return Layer(rgb, None, geo.horizon, 1.0, bands=8)


def _city(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    street = even(geo.horizon + 0.17 * geo.height)
    lit = {TimeOfDay.NIGHT: 0.45, TimeOfDay.SUNSET: 0.3, TimeOfDay.DAWN: 0.15, TimeOfDay.DAY: 0.0}[
        scene.time
    ]
    glass = mix(pal.near, pal.sky_horizon, 0.3)
    far = _skyline(
        geo, rng_for(scene, "far"), geo.horizon + 0.04 * geo.height, (0.1, 0.26), (0.04, 0.09)
    )
    near = _skyline(geo, rng_for(scene, "near"), street, (0.16, 0.44), (0.07, 0.16))
    far_layer = ground_layer(geo, far[0], (pal.far, pal.far), 0.3)
    near_layer = ground_layer(geo, near[0], (pal.near, shaded(pal.near, 0.8)), 0.7, near[2])
    window = (pal.accent, mix(pal.far, pal.accent, 0.45))
    _windows(
        far_layer, far[1], geo, rng_for(scene, "far-windows"), lit * 0.5, (window[1], pal.far), 0.6
    )
    _windows(near_layer, near[1], geo, rng_for(scene, "near-windows"), lit, (window[0], glass), 1.0)
    return [far_layer, near_layer, _street(scene, pal, geo, street)]


Building = tuple[int, int, int, int]  # first column, width, top row, bottom row


def _skyline(
    geo: Geometry,
    rng: np.random.Generator,
    base: float,
    tall: tuple[float, float],
    wide: tuple[float, float],
) -> tuple[NDArray[np.float64], list[Building], NDArray[np.float64]]:
    heights = np.full(geo.period, float(base))
    tone = np.ones(geo.period)
    buildings: list[Building] = []
    x = 0
    while x < geo.period:
        width = min(geo.period - x, max(4, int(rng.uniform(*wide) * geo.unit)))
        top = int(base - rng.uniform(*tall) * geo.height)
        heights[x : x + width] = top
        tone[x : x + width] = rng.uniform(0.82, 1.12)
        buildings.append((x, width, top, int(base)))
        x += width + int(rng.integers(0, max(1, geo.unit // 60)))
    return heights, buildings, tone


def _windows(
    layer: Layer,
    buildings: list[Building],
    geo: Geometry,
    rng: np.random.Generator,
    lit: float,
    colors: tuple[RGB, RGB],
    scale: float,
) -> None:
    ww, wh = max(2, round(geo.unit * 0.009 * scale)), max(2, round(geo.unit * 0.012 * scale))
    sx, sy = int(ww * 2.2), int(wh * 2.0)
    for x, width, top, bottom in buildings:
        rows = np.arange(top + sy, bottom - sy) - layer.top
        cols = np.arange(x + sx // 2, x + width - sx // 2)
        if rows.size <= 0 or cols.size <= 0:
            continue
        on = rng.random((rows.size // sy + 1, cols.size // sx + 1)) < lit
        local_y, local_x = np.arange(rows.size)[:, None], np.arange(cols.size)[None, :]
        pane = (local_y % sy < wh) & (local_x % sx < ww)
        glow = on[local_y // sy, local_x // sx]
        block = layer.rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        block[pane & glow] = colors[0]
        block[pane & ~glow] = colors[1]


def _street(scene: Scene, pal: Palette, geo: Geometry, top: int) -> Layer:
    asphalt = mix(pal.near, (12, 12, 16), 0.5)
    layer = ground_layer(geo, np.full(geo.period, float(top)), (shaded(asphalt, 1.3), asphalt), 1.0)
    rows = geo.height - top
    curb = max(2, even(geo.unit * 0.008))
    layer.rgb[:curb] = mix(pal.far, (200, 200, 200), 0.3)
    dash = max(2, round(geo.unit * 0.006))
    lane = int(rows * 0.55)
    pattern = (np.arange(geo.period) % max(8, geo.period // 24)) < geo.period // 48
    layer.rgb[lane : lane + dash, pattern] = mix(pal.accent, (230, 230, 230), 0.6)
    if scene.time is TimeOfDay.NIGHT or scene.weather is Weather.RAIN:
        glow = mix(asphalt, pal.accent, 0.25)
        layer.rgb[curb : curb + rows // 6] = np.maximum(
            layer.rgb[curb : curb + rows // 6], np.array(glow, np.uint8)
        )
    return layer


def _fire(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = ridge(geo, rng_for(scene, "far"), -0.02, 0.16, (2, 10), sharp=True)
    rng = rng_for(scene, "volcano")
    mid = ridge(geo, rng, 0.05, 0.05)
    peak_x = geo.width * rng.uniform(0.3, 0.7)
    peak_y = geo.horizon - 0.3 * geo.height
    cols = np.arange(geo.period)
    dist = np.minimum(np.abs(cols - peak_x), geo.period - np.abs(cols - peak_x))
    cone = peak_y + dist * 0.9 + np.where(dist < geo.unit * 0.04, geo.unit * 0.012, 0)
    mid = np.minimum(mid, cone)
    mid_layer = ground_layer(geo, mid, (pal.mid, shaded(pal.mid, 0.8)), 0.6)
    _lava(mid_layer, geo, rng, pal, (peak_x, peak_y))
    near = ground_layer(
        geo, ridge(geo, rng_for(scene, "near"), 0.24, 0.05, (1, 6)), (pal.near, pal.near), 1.0
    )
    _cracks(near, geo, rng_for(scene, "cracks"), pal)
    return [ground_layer(geo, far, (pal.far, shaded(pal.far, 0.8)), 0.3), mid_layer, near]


def _lava(
    layer: Layer, geo: Geometry, rng: np.random.Generator, pal: Palette, peak: tuple[float, float]
) -> None:
    paths = []
    for _ in range(4):
        side = 1 if rng.random() < 0.5 else -1
        x, y = peak[0] + rng.normal(0, geo.unit * 0.01), peak[1] - layer.top + geo.unit * 0.015
        path = [(x, y)]
        for _ in range(12):
            y += geo.unit * 0.02
            x += side * geo.unit * 0.02 * rng.uniform(0.1, 0.9) + rng.normal(0, geo.unit * 0.004)
            path.append((x, y))
        paths.append(path)
    _glowing(layer, geo, paths, pal)


def _cracks(layer: Layer, geo: Geometry, rng: np.random.Generator, pal: Palette) -> None:
    rows = geo.height - layer.top
    paths = []
    for _ in range(int(geo.period / geo.unit * 4)):
        x, y = rng.uniform(0, geo.period), rng.uniform(0.3, 0.95) * rows
        path = [(x, y)]
        for _ in range(int(rng.integers(3, 8))):
            x += geo.unit * rng.uniform(0.02, 0.06)
            y += rng.normal(0, geo.unit * 0.008) * (y / rows + 0.3)
            path.append((x, y))
        paths.append(path)
    _glowing(layer, geo, paths, pal)


def _glowing(
    layer: Layer, geo: Geometry, paths: list[list[tuple[float, float]]], pal: Palette
) -> None:
    """Molten lines with a halo, painted onto the layer."""

    def draw(canvas: ImageDraw.ImageDraw, width: int) -> None:
        for path in paths:
            for shift in (-width, 0, width):
                canvas.line(
                    [(x / 4 + shift, y / 4) for x, y in path], fill=255, width=1, joint="curve"
                )

    rows = geo.height - layer.top
    halo = soft_mask(geo, rows, draw, geo.unit * 0.02)
    core = soft_mask(geo, rows, draw, geo.unit * 0.002)
    blend(layer.rgb, np.clip(halo * 1.6, 0, 1) * 0.55, pal.accent)
    blend(layer.rgb, np.clip(core * 2.5, 0, 1), mix(pal.accent, (255, 240, 180), 0.5))
