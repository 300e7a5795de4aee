"""The sky layer: gradient, stars, sun or moon, planet, clouds and nebula."""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

from reelforge.emulator.canvas import (
    SKY_DEPTH,
    U8,
    Geometry,
    Layer,
    Offsets,
    blend,
    even,
    region_near,
    rng_for,
    sky_gradient,
    soft_mask,
    sun_place,
)
from reelforge.emulator.palette import Palette, mix
from reelforge.emulator.scene import Kind, Scene, TimeOfDay


def sky_layer(scene: Scene, pal: Palette, geo: Geometry) -> Layer:
    rgb = sky_gradient(geo, pal.sky_top, pal.sky_horizon)
    if scene.time is TimeOfDay.NIGHT or scene.kind is Kind.SPACE:
        if scene.kind is Kind.SPACE:
            _nebula(rgb, geo, rng_for(scene, "nebula"), pal)
        _stars(rgb, geo, rng_for(scene, "stars"))
    if scene.kind is Kind.SPACE:
        _planet(rgb, geo, scene, pal)
    else:
        _sun(rgb, geo, scene, pal)
        _clouds(rgb, geo, rng_for(scene, "clouds"), pal, scene)
    return Layer(rgb, None, 0, depth=SKY_DEPTH)


def _stars(rgb: U8, geo: Geometry, rng: np.random.Generator) -> None:
    count = int(0.0005 * geo.period * geo.horizon)
    size = max(2, round(geo.unit / 400))
    xs = rng.integers(0, geo.period - size, count)
    ys = (geo.horizon * rng.random(count) ** 1.4).astype(np.intp)
    brightness = rng.uniform(0.25, 1.0, count)[:, None]
    for dy in range(size):
        for dx in range(size):
            patch = rgb[ys + dy, xs + dx].astype(np.float64)
            rgb[ys + dy, xs + dx] = (patch + (255 - patch) * brightness).astype(np.uint8)


def _sun(rgb: U8, geo: Geometry, scene: Scene, pal: Palette) -> None:
    x, y, radius = sun_place(geo, scene)
    glow = radius * (3.5 if scene.time is TimeOfDay.NIGHT else 5.5)
    strength = 0.35 if scene.time is TimeOfDay.NIGHT else 0.7
    for cx in (x - geo.period, x, x + geo.period):
        window = region_near(rgb, cx, y, glow)
        if window is None:
            continue
        region, dx, dy = window
        dist = np.hypot(dx, dy)
        halo = strength * np.exp(-3.0 * (dist / glow) ** 2)
        disc = np.clip(radius + 0.75 - dist, 0, 1)
        mixed = region + (np.array(pal.glow, np.float32) - region) * halo[..., None]
        mixed += (np.array(pal.sun, np.float32) - mixed) * disc[..., None]
        region[...] = np.clip(mixed, 0, 255).astype(np.uint8)


def _planet(rgb: U8, geo: Geometry, scene: Scene, pal: Palette) -> None:
    x, y, _ = sun_place(geo, scene)
    radius = geo.unit * 0.14
    for cx in (x - geo.period, x, x + geo.period):
        window = region_near(rgb, cx, y, radius * 2.2)
        if window is not None:
            _planet_body(*window, radius, pal)


def _planet_body(region: U8, dx: Offsets, dy: Offsets, radius: float, pal: Palette) -> None:
    dist = np.hypot(dx, dy)
    body = np.clip(radius + 0.75 - dist, 0, 1)
    bands = 0.5 + 0.5 * np.sin(dy / radius * 9.0 + np.sin(dx / radius * 2.0))
    accent, sun = np.array(pal.accent, np.float32), np.array(pal.sun, np.float32)
    base = accent + (sun - accent) * (0.6 * bands)[..., None]
    nz = np.sqrt(np.clip(1 - (dist / radius) ** 2, 0, 1))
    light = np.clip(0.15 + 0.95 * (-0.6 * dx / radius - 0.3 * dy / radius + 0.75 * nz), 0.08, 1.0)
    ring = (dx / (radius * 2.0)) ** 2 + (dy / (radius * 0.38)) ** 2
    ring_alpha = np.clip(1 - np.abs(ring - 0.82) / 0.12, 0, 1) * 0.75
    ring_alpha *= (dist > radius) | (dy > 0)
    mixed = region + (base * light[..., None] - region) * body[..., None]
    mixed += (np.array(pal.cloud, np.float32) - mixed) * ring_alpha[..., None]
    region[...] = np.clip(mixed, 0, 255).astype(np.uint8)


def _clouds(rgb: U8, geo: Geometry, rng: np.random.Generator, pal: Palette, scene: Scene) -> None:
    rows = even(geo.horizon * 0.85)
    scale = geo.unit / 4
    puffs = []
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.uniform(0, geo.period / 4), rng.uniform(0.12, 0.7) * rows / 4
        for _ in range(int(rng.integers(5, 11))):
            rx = rng.uniform(0.035, 0.08) * scale
            x, y = cx + rng.normal(0, 0.11) * scale, cy - rx * rng.uniform(0.0, 0.6)
            puffs.append((x, y, rx, rx * rng.uniform(0.55, 0.8)))

    def draw(canvas: ImageDraw.ImageDraw, width: int) -> None:
        for x, y, rx, ry in puffs:
            for shift in (-width, 0, width):
                canvas.ellipse((x + shift - rx, y - ry, x + shift + rx, y + ry), fill=255)

    alpha = soft_mask(geo, rows, draw, blur=geo.unit * 0.008) * (
        0.6 if scene.time is TimeOfDay.NIGHT else 0.92
    )
    # Lit from above: a pixel with clear sky a little below it is on the shaded underside.
    lit = np.roll(alpha, -max(2, round(geo.unit * 0.02)), axis=0)
    blend(rgb, alpha, mix(pal.cloud, pal.sky_top, 0.3))
    blend(rgb, alpha * lit, pal.cloud)


def _nebula(rgb: U8, geo: Geometry, rng: np.random.Generator, pal: Palette) -> None:
    rows = geo.horizon
    scale = geo.unit / 4
    for color in (pal.cloud, pal.accent):

        def blobs(draw: ImageDraw.ImageDraw, width: int) -> None:
            for _ in range(int(rng.integers(3, 6))):
                cx, cy = rng.uniform(0, width), rng.uniform(0.1, 0.8) * rows / 4
                rx, ry = rng.uniform(0.2, 0.5) * scale, rng.uniform(0.06, 0.16) * scale
                for shift in (-width, 0, width):
                    draw.ellipse((cx + shift - rx, cy - ry, cx + shift + rx, cy + ry), fill=255)

        alpha = soft_mask(geo, rows, blobs, blur=geo.unit * 0.07)
        blend(rgb, alpha * 0.45, color)
