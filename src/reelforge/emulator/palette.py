"""A scene's colours: its sky and land lit by the time of day, then graded by the prompt."""

from __future__ import annotations

import colorsys
from collections.abc import Mapping
from dataclasses import dataclass

from reelforge.emulator.scene import Kind, Scene, TimeOfDay

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    sky_top: RGB
    sky_horizon: RGB
    sun: RGB
    glow: RGB
    cloud: RGB
    far: RGB
    mid: RGB
    near: RGB
    accent: RGB  # windows, lava, glitter: the scene's light sources
    card: RGB  # behind the prompt text


_SKIES: Mapping[TimeOfDay, tuple[RGB, RGB, RGB, RGB]] = {
    # top, horizon, sun, cloud
    TimeOfDay.DAWN: ((62, 84, 158), (250, 184, 152), (255, 226, 190), (252, 206, 200)),
    TimeOfDay.DAY: ((52, 124, 218), (178, 216, 245), (255, 250, 228), (250, 252, 255)),
    TimeOfDay.SUNSET: ((46, 44, 116), (255, 138, 72), (255, 204, 120), (246, 150, 130)),
    TimeOfDay.NIGHT: ((6, 9, 28), (30, 42, 86), (236, 236, 218), (58, 66, 100)),
}
_LANDS: Mapping[Kind, tuple[RGB, RGB, RGB, RGB]] = {
    # far, mid, near, accent (under daylight)
    Kind.MEADOW: ((112, 140, 172), (96, 156, 74), (54, 116, 48), (255, 236, 120)),
    Kind.OCEAN: ((92, 112, 124), (34, 104, 156), (22, 74, 124), (255, 244, 210)),
    Kind.FOREST: ((92, 122, 144), (42, 98, 64), (20, 62, 38), (214, 255, 140)),
    Kind.CITY: ((86, 98, 132), (44, 48, 70), (28, 28, 38), (255, 214, 130)),
    Kind.FIRE: ((92, 30, 26), (52, 16, 14), (26, 8, 8), (255, 132, 36)),
    Kind.SNOW: ((184, 200, 228), (222, 232, 246), (246, 249, 253), (200, 236, 255)),
    Kind.DESERT: ((204, 150, 112), (226, 176, 114), (242, 202, 142), (255, 238, 190)),
    Kind.SPACE: ((60, 40, 96), (84, 82, 96), (52, 50, 60), (150, 70, 190)),
}
_LIGHT: Mapping[TimeOfDay, tuple[float, RGB]] = {
    # how bright the land is, and the colour of the light on it
    TimeOfDay.DAWN: (0.78, (255, 214, 196)),
    TimeOfDay.DAY: (1.0, (255, 255, 255)),
    TimeOfDay.SUNSET: (0.62, (255, 176, 130)),
    TimeOfDay.NIGHT: (0.26, (150, 170, 255)),
}


def mix(a: RGB, b: RGB, amount: float) -> RGB:
    r, g, b_ = (round(x + (y - x) * amount) for x, y in zip(a, b, strict=True))
    return (r, g, b_)


def _lit(color: RGB, light: tuple[float, RGB]) -> RGB:
    level, tint = light
    r, g, b = (round(c * level * t / 255) for c, t in zip(color, tint, strict=True))
    return (r, g, b)


def palette_of(scene: Scene) -> Palette:
    top, horizon, sun, cloud = _SKIES[scene.time]
    far, mid, near, accent = _LANDS[scene.kind]
    if scene.kind is Kind.FIRE:
        top, horizon, cloud = (34, 6, 8), (226, 86, 30), (120, 40, 30)
    elif scene.kind is Kind.SPACE:
        top, horizon, cloud = (4, 4, 18), (34, 16, 64), (120, 60, 170)
    light = _LIGHT[scene.time]
    if scene.kind is Kind.FIRE or scene.kind is Kind.SPACE:
        light = (max(light[0], 0.7), light[1])
    haze = 0.35 + 0.5 * scene.fog
    far = mix(_lit(far, light), horizon, haze)
    mid = mix(_lit(mid, light), horizon, haze * 0.45)
    near = mix(_lit(near, light), horizon, haze * 0.15)
    card = mix(_lit(near, (0.35, light[1])), (8, 10, 18), 0.5)
    colors = (top, horizon, sun, mix(sun, horizon, 0.4), cloud, far, mid, near, accent, card)
    return Palette(*(_grade(c, scene) for c in colors))


def _grade(color: RGB, scene: Scene) -> RGB:
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255 for c in color))
    h = (h + scene.hue_shift / 360.0) % 1.0
    if scene.tint is not None:
        target = scene.tint / 360.0
        # Lean along the shorter way round the hue circle.
        h = (h + (((target - h + 0.5) % 1.0) - 0.5) * 0.55) % 1.0
        s = max(s, 0.35)
    s = min(1.0, s * scene.saturation)
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return (round(r * 255), round(g * 255), round(b * 255))


def shaded(color: RGB, factor: float) -> RGB:
    r, g, b = (min(255, round(c * factor)) for c in color)
    return (r, g, b)
