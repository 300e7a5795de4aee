"""What the emulator draws for a prompt: the scene it picks, its palette, and its artwork."""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
U8 = NDArray[np.uint8]
_T = TypeVar("_T")
_K = TypeVar("_K", bound=str)


class Kind(StrEnum):
    MEADOW = "meadow"
    OCEAN = "ocean"
    FOREST = "forest"
    CITY = "city"
    FIRE = "fire"
    SNOW = "snow"
    DESERT = "desert"
    SPACE = "space"


class TimeOfDay(StrEnum):
    DAWN = "dawn"
    DAY = "day"
    SUNSET = "sunset"
    NIGHT = "night"


class Weather(StrEnum):
    CLEAR = "clear"
    RAIN = "rain"
    SNOW = "snow"
    EMBERS = "embers"
    FIREFLIES = "fireflies"


def _vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Matched against each prompt word and its crude stems (see `words_of`), first word first.
_KIND_WORDS: Mapping[Kind, frozenset[str]] = {
    Kind.OCEAN: _vocabulary(
        "ocean sea beach beaches wave surf surfer coast coastal island boat sail harbor harbour "
        "lake shore underwater whale dolphin"
    ),
    Kind.FOREST: _vocabulary(
        "forest tree woods jungle rainforest pine garden park mountain hike valley deer fox owl "
        "cabin"
    ),
    Kind.CITY: _vocabulary(
        "city cities street neon building skyline urban cyberpunk tokyo york downtown car "
        "traffic skyscraper metropolis alley taxi"
    ),
    Kind.FIRE: _vocabulary(
        "fire flame lava volcano volcanic campfire burn inferno dragon explosion blaze ember "
        "hell magma"
    ),
    Kind.SNOW: _vocabulary(
        "snow snowy winter ice icy arctic frozen blizzard christmas ski glacier polar penguin "
        "snowman frost"
    ),
    Kind.DESERT: _vocabulary("desert sand sandy dune sahara canyon cactus mars camel oasis"),
    Kind.SPACE: _vocabulary(
        "space galaxy galaxies planet nebula astronaut rocket cosmic cosmos universe orbit "
        "spaceship asteroid alien starship"
    ),
    Kind.MEADOW: _vocabulary(
        "meadow field grass farm countryside hill flower picnic pasture prairie"
    ),
}

_TIME_WORDS: Mapping[TimeOfDay, frozenset[str]] = {
    TimeOfDay.NIGHT: _vocabulary("night midnight moon moonlight moonlit starry dark"),
    TimeOfDay.SUNSET: _vocabulary("sunset dusk evening twilight golden"),
    TimeOfDay.DAWN: _vocabulary("dawn sunrise morning daybreak"),
    TimeOfDay.DAY: _vocabulary("day daytime noon sunny afternoon bright daylight"),
}

_WEATHER_WORDS: Mapping[Weather, frozenset[str]] = {
    Weather.RAIN: _vocabulary("rain rainy rainstorm storm stormy thunder downpour"),
    Weather.SNOW: _vocabulary("snow snowfall snowflake blizzard"),
    Weather.EMBERS: _vocabulary("ember spark ash"),
    Weather.FIREFLIES: _vocabulary("fireflies firefly glow magical fairy fairies"),
    Weather.CLEAR: _vocabulary("clear"),
}

# A colour word tints the whole palette toward this hue (degrees).
_TINT_WORDS: Mapping[str, float] = {
    "red": 0.0,
    "crimson": 350.0,
    "orange": 28.0,
    "amber": 40.0,
    "gold": 48.0,
    "yellow": 55.0,
    "green": 120.0,
    "emerald": 140.0,
    "teal": 175.0,
    "cyan": 185.0,
    "turquoise": 175.0,
    "blue": 215.0,
    "indigo": 245.0,
    "purple": 275.0,
    "violet": 280.0,
    "magenta": 305.0,
    "pink": 330.0,
    "neon": 300.0,
}

_FOG_WORDS = _vocabulary("fog foggy mist misty haze hazy dreamy cloudy overcast")
_MONO_WORDS = _vocabulary("monochrome grayscale greyscale noir")
_VIVID_WORDS = _vocabulary("vivid vibrant saturated colorful colourful neon psychedelic")
_SOFT_WORDS = _vocabulary("pastel muted faded soft vintage retro")

# Kinds a prompt without scene words may land on, and the times of day each kind favours.
_FALLBACK_KINDS = (Kind.MEADOW, Kind.OCEAN, Kind.FOREST, Kind.CITY, Kind.DESERT, Kind.SNOW)
_TIMES_BY_KIND: Mapping[Kind, tuple[TimeOfDay, ...]] = {
    Kind.CITY: (TimeOfDay.NIGHT, TimeOfDay.NIGHT, TimeOfDay.SUNSET, TimeOfDay.DAY),
    Kind.FIRE: (TimeOfDay.NIGHT, TimeOfDay.SUNSET),
    Kind.SPACE: (TimeOfDay.NIGHT,),
}
_DEFAULT_TIMES = (TimeOfDay.DAY, TimeOfDay.DAY, TimeOfDay.SUNSET, TimeOfDay.DAWN, TimeOfDay.NIGHT)


def words_of(text: str) -> list[str]:
    """The prompt's words in order, each followed by its crude stems ("rains" → "rain")."""
    words: list[str] = []
    for word in re.findall(r"[a-z]+", text.lower()):
        words.append(word)
        for suffix in ("s", "ing", "ed"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
                words.append(word[: -len(suffix)])
    return words


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) named by `parts` (stable across runs and machines)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _first_match(words: Iterable[str], table: Mapping[_K, frozenset[str]]) -> _K | None:
    for word in words:
        for key, vocabulary in table.items():
            if word in vocabulary:
                return key
    return None


@dataclass(frozen=True)
class Scene:
    """Everything about a shot except its pixels; remixes and extensions derive new ones."""

    kind: Kind
    time: TimeOfDay
    weather: Weather
    layout_seed: int
    pan: float  # camera pan, in frame short sides per second; the sign is the direction
    hue_shift: float = 0.0  # degrees, applied to every palette colour
    saturation: float = 1.0
    tint: float | None = None  # hue in degrees the palette leans toward
    fog: float = 0.0  # 0..1, how much far layers fade into the sky

    @property
    def label(self) -> str:
        return f"{self.kind} · {self.time}" + (
            "" if self.weather is Weather.CLEAR else f" · {self.weather}"
        )

    def palette(self) -> Palette:
        return _palette(self)


def scene_from_prompt(prompt: str, seed: int) -> Scene:
    words = words_of(prompt)
    key = (" ".join(words), seed)
    found = _first_match(words, _KIND_WORDS)
    kind = Kind(found) if found else _pick(_FALLBACK_KINDS, key, "kind")
    time = _time_from(words) or _pick(_TIMES_BY_KIND.get(kind, _DEFAULT_TIMES), key, "time")
    base = Scene(
        kind=kind,
        time=time,
        weather=Weather.CLEAR,
        layout_seed=int(unit(key, "layout") * 2**31),
        pan=(0.025 + 0.035 * unit(key, "pan")) * (1 if unit(key, "dir") < 0.5 else -1),
        hue_shift=(unit(key, "hue") - 0.5) * 30.0,
    )
    return _apply_words(replace(base, weather=_default_weather(base, key)), words)


def remix_scene(parent: Scene, prompt: str, seed: int) -> Scene:
    """The parent's shot (layout, motion, palette family) changed by the remix prompt."""
    words = words_of(prompt)
    key = (" ".join(words), seed, "remix")
    swing = 20.0 + 25.0 * unit(key, "swing")
    shift = swing if unit(key, "dir") < 0.5 else -swing
    return _apply_words(replace(parent, hue_shift=parent.hue_shift + shift), words)


def continue_scene(previous: Scene, prompt: str) -> Scene:
    """An extension continues the shot unchanged unless its prompt names a change."""
    return _apply_words(previous, words_of(prompt))


def _pick(options: tuple[_T, ...], key: object, salt: str) -> _T:
    return options[int(unit(key, salt) * len(options))]


def _time_from(words: Iterable[str]) -> TimeOfDay | None:
    found = _first_match(words, _TIME_WORDS)
    return TimeOfDay(found) if found else None


def _default_weather(scene: Scene, key: object) -> Weather:
    if scene.kind is Kind.SNOW:
        return Weather.SNOW
    if scene.kind is Kind.FIRE:
        return Weather.EMBERS
    if scene.kind in (Kind.FOREST, Kind.MEADOW) and scene.time is TimeOfDay.NIGHT:
        return Weather.FIREFLIES
    if scene.kind is Kind.CITY and unit(key, "rain") < 0.4:
        return Weather.RAIN
    return Weather.CLEAR


def _apply_words(scene: Scene, words: list[str]) -> Scene:
    vocabulary = set(words)
    time = _time_from(words) or scene.time
    found = _first_match(words, _WEATHER_WORDS)
    weather = Weather(found) if found else scene.weather
    tint = next((_TINT_WORDS[w] for w in words if w in _TINT_WORDS), scene.tint)
    saturation = scene.saturation
    if vocabulary & _MONO_WORDS:
        saturation = 0.0
    elif vocabulary & _VIVID_WORDS:
        saturation = max(saturation, 1.0) * 1.35
    elif vocabulary & _SOFT_WORDS:
        saturation *= 0.6
    fog = 0.55 if vocabulary & _FOG_WORDS else scene.fog
    return replace(scene, time=time, weather=weather, tint=tint, saturation=saturation, fog=fog)


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


def _palette(scene: Scene) -> Palette:
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


# --- the artwork: panoramas (RGB) and swarms, drawn once per shot -------------------------


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


def layers(scene: Scene, geo: Geometry) -> list[Layer]:
    """The shot's panoramas, from the sky to the nearest ground."""
    pal = scene.palette()
    return [_sky(scene, pal, geo), *_land_layers(scene, pal, geo)]


def _rng(scene: Scene, name: str) -> np.random.Generator:
    # One stream per element, so a remix that adds stars does not move the hills.
    return np.random.default_rng(int(unit(scene.layout_seed, name) * 2**63))


def _noise(
    rng: np.random.Generator, period: int, harmonics: tuple[int, int]
) -> NDArray[np.float64]:
    """A smooth curve over `period` columns that joins up with itself, in [-1, 1]."""
    x = np.arange(period) * (2 * math.pi / period)
    curve = np.zeros(period)
    for k in range(harmonics[0], harmonics[1] + 1):
        curve += rng.normal() / k * np.sin(k * x + rng.uniform(0, 2 * math.pi))
    peak = float(np.abs(curve).max())
    return curve / peak if peak else curve


def _ridge(
    geo: Geometry,
    rng: np.random.Generator,
    level: float,
    amplitude: float,
    harmonics: tuple[int, int] = (2, 9),
    sharp: bool = False,
) -> NDArray[np.float64]:
    """Row of the skyline per column: `level` and `amplitude` are fractions of the height."""
    curve = _noise(rng, geo.period, harmonics)
    shape = 1 - np.abs(curve) if sharp else (curve + 1) / 2
    return geo.horizon + geo.height * (level - amplitude * shape)


def _ground(
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


def _gradient(geo: Geometry, top: RGB, horizon: RGB) -> U8:
    rows = np.arange(geo.height, dtype=np.float64)
    fraction = np.clip(rows / geo.horizon, 0, 1) ** 1.6
    start, stop = np.array(top, np.float64), np.array(horizon, np.float64)
    column = (start + (stop - start) * fraction[:, None]).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(column[:, None, :], (geo.height, geo.period, 3)))


def _soft_mask(
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


def _paint(rgb: U8, alpha: NDArray[np.float32], color: RGB) -> None:
    """Blend `color` over the top rows of `rgb` by `alpha` (0..1)."""
    region = rgb[: alpha.shape[0]]
    weight = np.rint(alpha * 128).astype(np.int16)[..., None]
    delta = np.array(color, np.int16) - region
    delta *= weight
    delta >>= 7
    delta += region
    region[...] = delta


def _sky(scene: Scene, pal: Palette, geo: Geometry) -> Layer:
    rgb = _gradient(geo, pal.sky_top, pal.sky_horizon)
    if scene.time is TimeOfDay.NIGHT or scene.kind is Kind.SPACE:
        if scene.kind is Kind.SPACE:
            _nebula(rgb, geo, _rng(scene, "nebula"), pal)
        _stars(rgb, geo, _rng(scene, "stars"))
    if scene.kind is Kind.SPACE:
        _planet(rgb, geo, scene, pal)
    else:
        _sun(rgb, geo, scene, pal)
        _clouds(rgb, geo, _rng(scene, "clouds"), pal, scene)
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


def _sun_place(geo: Geometry, scene: Scene) -> tuple[float, float, float]:
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


def _sun(rgb: U8, geo: Geometry, scene: Scene, pal: Palette) -> None:
    x, y, radius = _sun_place(geo, scene)
    glow = radius * (3.5 if scene.time is TimeOfDay.NIGHT else 5.5)
    strength = 0.35 if scene.time is TimeOfDay.NIGHT else 0.7
    for cx in (x - geo.period, x, x + geo.period):
        window = _window(rgb, cx, y, glow)
        if window is None:
            continue
        region, dx, dy = window
        dist = np.hypot(dx, dy)
        halo = strength * np.exp(-3.0 * (dist / glow) ** 2)
        disc = np.clip(radius + 0.75 - dist, 0, 1)
        mixed = region + (np.array(pal.glow, np.float32) - region) * halo[..., None]
        mixed += (np.array(pal.sun, np.float32) - mixed) * disc[..., None]
        region[...] = np.clip(mixed, 0, 255).astype(np.uint8)


Offsets = NDArray[np.float64]


def _window(rgb: U8, cx: float, cy: float, reach: float) -> tuple[U8, Offsets, Offsets] | None:
    """The part of `rgb` within `reach` of (cx, cy), with column and row offsets from it."""
    height, width = rgb.shape[:2]
    x0, x1 = max(0, int(cx - reach)), min(width, int(cx + reach) + 1)
    y0, y1 = max(0, int(cy - reach)), min(height, int(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float64) - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float64) - cy)[:, None]
    return rgb[y0:y1, x0:x1], dx, dy


def _planet(rgb: U8, geo: Geometry, scene: Scene, pal: Palette) -> None:
    x, y, _ = _sun_place(geo, scene)
    radius = geo.unit * 0.14
    for cx in (x - geo.period, x, x + geo.period):
        window = _window(rgb, cx, y, radius * 2.2)
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

    alpha = _soft_mask(geo, rows, draw, blur=geo.unit * 0.008) * (
        0.6 if scene.time is TimeOfDay.NIGHT else 0.92
    )
    # Lit from above: a pixel with clear sky a little below it is on the shaded underside.
    lit = np.roll(alpha, -max(2, round(geo.unit * 0.02)), axis=0)
    _paint(rgb, alpha, mix(pal.cloud, pal.sky_top, 0.3))
    _paint(rgb, alpha * lit, pal.cloud)


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

        alpha = _soft_mask(geo, rows, blobs, blur=geo.unit * 0.07)
        _paint(rgb, alpha * 0.45, color)


# --- the land, kind by kind ------------------------------------------------------------------


def _shade(color: RGB, factor: float) -> RGB:
    r, g, b = (min(255, round(c * factor)) for c in color)
    return (r, g, b)


def _land_layers(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
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
    far = _ridge(geo, _rng(scene, "far"), -0.01, 0.1, (2, 7))
    mid = _ridge(geo, _rng(scene, "mid"), 0.07, 0.08, (2, 8))
    near = _ground(
        geo,
        _ridge(geo, _rng(scene, "near"), 0.22, 0.09, (1, 6)),
        (pal.near, _shade(pal.near, 0.7)),
        1.0,
    )
    _flowers(near, geo, _rng(scene, "flowers"), pal)
    return [
        _ground(geo, far, (pal.far, mix(pal.far, pal.mid, 0.3)), 0.3),
        _ground(geo, mid, (pal.mid, _shade(pal.mid, 0.75)), 0.6),
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
    layer = _ground(geo, heights, colors, depth)
    assert layer.mask is not None
    rows = np.arange(layer.top, geo.height)[:, None]
    layer.rgb[layer.mask & (rows < ground[None, :])] = tree
    return layer


def _forest(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = _ridge(geo, _rng(scene, "far"), -0.03, 0.22, (2, 10), sharp=True)
    mid_ground = _ridge(geo, _rng(scene, "mid"), 0.05, 0.06)
    mid = _trees(geo, mid_ground, _rng(scene, "mid-trees"), 0.022, (0.05, 0.09))
    near_ground = _ridge(geo, _rng(scene, "near"), 0.24, 0.05, (1, 5))
    near = _trees(geo, near_ground, _rng(scene, "near-trees"), 0.07, (0.16, 0.3))
    return [
        _ground(geo, far, (pal.far, mix(pal.far, pal.mid, 0.25)), 0.3),
        _wooded(geo, mid_ground, mid, (pal.mid, _shade(pal.mid, 0.8)), _shade(pal.mid, 0.85), 0.6),
        _wooded(
            geo, near_ground, near, (pal.near, _shade(pal.near, 0.7)), _shade(pal.near, 0.8), 1.0
        ),
    ]


def _snowfield(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = _ridge(geo, _rng(scene, "far"), -0.03, 0.24, (2, 10), sharp=True)
    mid = _ridge(geo, _rng(scene, "mid"), 0.06, 0.08)
    near_ground = _ridge(geo, _rng(scene, "near"), 0.24, 0.05, (1, 5))
    near = _trees(geo, near_ground, _rng(scene, "near-trees"), 0.16, (0.12, 0.22))
    pine = mix(_shade(pal.far, 0.45), (20, 60, 50), 0.5)
    return [
        _ground(geo, far, (pal.mid, pal.far), 0.3),
        _ground(geo, mid, (pal.mid, _shade(pal.mid, 0.92)), 0.6),
        _wooded(geo, near_ground, near, (pal.near, _shade(pal.near, 0.9)), pine, 1.0),
    ]


def _desert(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    layers = []
    for name, level, amplitude, colors, depth in (
        ("far", -0.01, 0.07, (pal.far, pal.far), 0.3),
        ("mid", 0.08, 0.1, (pal.mid, _shade(pal.mid, 0.9)), 0.6),
        ("near", 0.25, 0.1, (pal.near, _shade(pal.near, 0.85)), 1.0),
    ):
        heights = _ridge(geo, _rng(scene, name), level, amplitude, (1, 4))
        slope = np.gradient(heights) * (geo.period / geo.unit)
        shade = 1.0 - 0.3 * np.tanh(slope * 0.8)
        layers.append(_ground(geo, heights, colors, depth, shade, crest=0.1))
    return layers


def _moonscape(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    far = _ridge(geo, _rng(scene, "far"), 0.0, 0.12, (2, 9), sharp=True)
    near = _ground(
        geo, _ridge(geo, _rng(scene, "near"), 0.2, 0.04, (1, 5)), (pal.mid, pal.near), 1.0
    )
    _craters(near, geo, _rng(scene, "craters"), pal)
    return [_ground(geo, far, (pal.far, _shade(pal.far, 0.8)), 0.3), near]


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
                fill=_shade(pal.near, 0.7),
                outline=_shade(pal.mid, 1.25),
                width=max(1, round(ry / 5)),
            )
    layer.rgb[...] = np.asarray(image)


def _ocean(scene: Scene, pal: Palette, geo: Geometry) -> list[Layer]:
    curve = _noise(_rng(scene, "far"), geo.period, (3, 10))
    islands = geo.horizon - geo.height * 0.09 * np.clip((curve - 0.3) / 0.7, 0, 1) ** 0.7
    return [_ground(geo, islands, (pal.far, pal.far), 0.3), _water(scene, pal, geo)]


def _water(scene: Scene, pal: Palette, geo: Geometry) -> Layer:
    rng = _rng(scene, "waves")
    surface = mix(pal.sky_horizon, pal.mid, 0.45)
    layer = _ground(geo, np.full(geo.period, float(geo.horizon)), (surface, pal.near), 1.0)
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
        geo, _rng(scene, "far"), geo.horizon + 0.04 * geo.height, (0.1, 0.26), (0.04, 0.09)
    )
    near = _skyline(geo, _rng(scene, "near"), street, (0.16, 0.44), (0.07, 0.16))
    far_layer = _ground(geo, far[0], (pal.far, pal.far), 0.3)
    near_layer = _ground(geo, near[0], (pal.near, _shade(pal.near, 0.8)), 0.7, near[2])
    window = (pal.accent, mix(pal.far, pal.accent, 0.45))
    _windows(
        far_layer, far[1], geo, _rng(scene, "far-windows"), lit * 0.5, (window[1], pal.far), 0.6
    )
    _windows(near_layer, near[1], geo, _rng(scene, "near-windows"), lit, (window[0], glass), 1.0)
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
    layer = _ground(geo, np.full(geo.period, float(top)), (_shade(asphalt, 1.3), asphalt), 1.0)
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
    far = _ridge(geo, _rng(scene, "far"), -0.02, 0.16, (2, 10), sharp=True)
    rng = _rng(scene, "volcano")
    mid = _ridge(geo, rng, 0.05, 0.05)
    peak_x = geo.width * rng.uniform(0.3, 0.7)
    peak_y = geo.horizon - 0.3 * geo.height
    cols = np.arange(geo.period)
    dist = np.minimum(np.abs(cols - peak_x), geo.period - np.abs(cols - peak_x))
    cone = peak_y + dist * 0.9 + np.where(dist < geo.unit * 0.04, geo.unit * 0.012, 0)
    mid = np.minimum(mid, cone)
    mid_layer = _ground(geo, mid, (pal.mid, _shade(pal.mid, 0.8)), 0.6)
    _lava(mid_layer, geo, rng, pal, (peak_x, peak_y))
    near = _ground(
        geo, _ridge(geo, _rng(scene, "near"), 0.24, 0.05, (1, 6)), (pal.near, pal.near), 1.0
    )
    _cracks(near, geo, _rng(scene, "cracks"), pal)
    return [_ground(geo, far, (pal.far, _shade(pal.far, 0.8)), 0.3), mid_layer, near]


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
    halo = _soft_mask(geo, rows, draw, geo.unit * 0.02)
    core = _soft_mask(geo, rows, draw, geo.unit * 0.002)
    _paint(layer.rgb, np.clip(halo * 1.6, 0, 1) * 0.55, pal.accent)
    _paint(layer.rgb, np.clip(core * 2.5, 0, 1), mix(pal.accent, (255, 240, 180), 0.5))


# --- swarms: moving sprites, as data; the renderer animates them ---------------------------------


def _dot(radius: float, glow: bool = False) -> NDArray[np.float64]:
    reach = math.ceil(radius * (2.5 if glow else 1.0)) + 1
    ys, xs = np.ogrid[-reach : reach + 1, -reach : reach + 1]
    dist = np.hypot(xs, ys)
    if glow:
        return np.maximum(
            np.clip(radius * 0.5 + 0.5 - dist, 0, 1), 0.6 * np.exp(-((dist / radius) ** 2))
        )
    return np.clip(radius + 0.5 - dist, 0, 1)


def _drawn(size: int, draw: Callable[[ImageDraw.ImageDraw], None]) -> NDArray[np.float64]:
    canvas = Image.new("L", (size, size))
    draw(ImageDraw.Draw(canvas))
    return np.asarray(canvas, np.float64) / 255


def _streak(length: float, angle: float, width: int = 1) -> NDArray[np.float64]:
    size = math.ceil(length) | 1
    dx, dy = math.sin(angle) * length / 2, math.cos(angle) * length / 2
    c = size / 2
    return _drawn(size, lambda d: d.line((c - dx, c - dy, c + dx, c + dy), fill=255, width=width))


def _bird(span: float) -> NDArray[np.float64]:
    size = math.ceil(span) | 1
    c, w = size / 2, max(1, round(span / 12))
    wing = [(0.0, c - span * 0.18), (c * 0.55, c - span * 0.02), (c, c + span * 0.12)]
    points = [*wing, (size - wing[1][0], wing[1][1]), (size - 1.0, wing[0][1])]
    return _drawn(size, lambda d: d.line(points, fill=255, width=w, joint="curve"))


def _pair(gap: float, radius: float) -> NDArray[np.float64]:
    dot = _dot(radius, glow=True)
    size = dot.shape[0]
    out = np.zeros((size, size + int(gap)))
    out[:, :size] = dot
    out[:, int(gap) :] = np.maximum(out[:, int(gap) :], dot)
    return out


@dataclass(frozen=True)
class Swarm:
    """Sprites moving along straight lines with a wobble, wrapping around a domain (pixels)."""

    shape: NDArray[np.float64]  # the sprite's opacity, 0..1
    color: RGB
    x0: NDArray[np.float64]
    y0: NDArray[np.float64]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    sway: NDArray[np.float64]
    freq: NDArray[np.float64]
    phase: NDArray[np.float64]
    alpha: NDArray[np.float64]
    blink: float  # how deeply each sprite pulses, 0..1
    domain: tuple[float, float]  # positions wrap around this, margins included
    margin: float  # room to leave the frame entirely before wrapping

    def at(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Centre columns, centre rows and opacities (0..1) at `t` seconds."""
        wobble = self.freq * t + self.phase
        x = (self.x0 + self.vx * t + self.sway * np.sin(wobble)) % self.domain[0]
        y = (self.y0 + self.vy * t + 0.5 * self.sway * np.cos(0.7 * wobble)) % self.domain[1]
        level = self.alpha * (1 - self.blink * (0.5 + 0.5 * np.sin(2.3 * wobble + self.phase)))
        return x - self.margin, y - self.margin, level


def swarms(scene: Scene, geo: Geometry) -> list[Swarm]:
    pal = scene.palette()
    return [*_kind_swarms(scene, pal, geo), *_weather(scene, pal, geo)]


Range = tuple[float, float]


def _swarm(
    geo: Geometry,
    rng: np.random.Generator,
    count: int,
    alpha_map: NDArray[np.float64],
    color: RGB,
    *,
    rows: Range = (0.0, 1.0),
    vx: Range = (0.0, 0.0),
    vy: Range = (0.0, 0.0),
    sway: float = 0.0,
    freq: Range = (0.3, 1.2),
    blink: float = 0.0,
    alpha: Range = (0.6, 1.0),
    span: float | None = None,
) -> Swarm:
    """`count` sprites; speeds and sway in short sides (per second), rows in fractions of height."""
    margin = float(max(alpha_map.shape)) + abs(sway) * geo.unit
    width = (span if span is not None else geo.width) + 2 * margin
    height = geo.height + 2 * margin
    u = geo.unit
    return Swarm(
        shape=alpha_map,
        color=color,
        x0=rng.uniform(0, width, count),
        y0=margin + geo.height * rng.uniform(*rows, count),
        vx=rng.uniform(min(vx), max(vx), count) * u,
        vy=rng.uniform(min(vy), max(vy), count) * u,
        sway=rng.uniform(0.3, 1.0, count) * sway * u,
        freq=rng.uniform(*freq, count),
        phase=rng.uniform(0, 2 * math.pi, count),
        alpha=rng.uniform(*alpha, count),
        blink=blink,
        domain=(width, height),
        margin=margin,
    )


def _weather(scene: Scene, pal: Palette, geo: Geometry) -> list[Swarm]:
    makers: dict[Weather, Callable[[Scene, Palette, Geometry], list[Swarm]]] = {
        Weather.SNOW: _snowfall,
        Weather.RAIN: _rainfall,
        Weather.EMBERS: _embers,
        Weather.FIREFLIES: _fireflies,
    }
    maker = makers.get(scene.weather)
    return maker(scene, pal, geo) if maker else []


def _density(geo: Geometry) -> float:
    """Frame area in short sides squared: counts scale with it, so portrait looks as full."""
    return geo.width * geo.height / geo.unit**2


def _snowfall(scene: Scene, pal: Palette, geo: Geometry) -> list[Swarm]:
    rng, u, area = _rng(scene, "weather"), geo.unit, _density(geo)
    flakes = []
    # Three depths: far flakes are small and slow and drift little with the pan.
    for count, radius, fall, depth in (
        (160, 0.0025, 0.05, 0.3),
        (90, 0.0042, 0.09, 0.6),
        (35, 0.0068, 0.15, 1.0),
    ):
        drift = -scene.pan * depth
        flakes.append(
            _swarm(
                geo,
                rng,
                int(count * area),
                _dot(u * radius),
                (244, 247, 255),
                vx=(drift - 0.01, drift + 0.02),
                vy=(fall * 0.7, fall * 1.3),
                sway=0.02,
                alpha=(0.55, 0.95),
            )
        )
    return flakes


def _rainfall(scene: Scene, pal: Palette, geo: Geometry) -> list[Swarm]:
    rng, u, area = _rng(scene, "weather"), geo.unit, _density(geo)
    tilt = 0.18 * (1 if scene.pan < 0 else -1)
    color = mix(pal.sky_horizon, (215, 225, 240), 0.6)
    drops = []
    for count, length, fall, alpha in (
        (90, 0.035, 1.5, (0.18, 0.3)),
        (30, 0.065, 2.3, (0.25, 0.4)),
    ):
        drops.append(
            _swarm(
                geo,
                rng,
                int(count * area),
                _streak(u * length, tilt),
                color,
                vx=(fall * math.tan(tilt),) * 2,
                vy=(fall * 0.9, fall * 1.1),
                alpha=alpha,
            )
        )
    return drops


def _embers(scene: Scene, pal: Palette, geo: Geometry) -> list[Swarm]:
    rng, drift = _rng(scene, "weather"), -scene.pan
    color = mix(pal.accent, (255, 226, 140), 0.35)
    return [
        _swarm(
            geo,
            rng,
            int(90 * _density(geo)),
            _dot(geo.unit * 0.004, glow=True),
            color,
            vx=(drift - 0.01, drift + 0.02),
            vy=(-0.16, -0.05),
            sway=0.03,
            blink=0.5,
        )
    ]


def _fireflies(scene: Scene, pal: Palette, geo: Geometry) -> list[Swarm]:
    rng, drift = _rng(scene, "weather"), -scene.pan
    color = mix(pal.accent, (226, 255, 140), 0.6)
    return [
        _swarm(
            geo,
            rng,
            int(30 * _density(geo)),
            _dot(geo.unit * 0.005, glow=True),
            color,
            rows=(geo.horizon / geo.height, 0.97),
            vx=(drift - 0.01, drift + 0.01),
            sway=0.04,
            freq=(0.3, 0.9),
            blink=0.85,
        )
    ]


def _kind_swarms(scene: Scene, pal: Palette, geo: Geometry) -> list[Swarm]:
    rng = _rng(scene, "kind-swarms")
    found: list[Swarm] = []
    calm = scene.weather is Weather.CLEAR and scene.time is not TimeOfDay.NIGHT
    if calm and scene.kind in (Kind.MEADOW, Kind.OCEAN, Kind.FOREST, Kind.DESERT):
        found.append(_birds(pal, geo, rng))
    if scene.kind is Kind.OCEAN and scene.weather is not Weather.RAIN:
        found.append(_glitter(scene, pal, geo, rng))
    if scene.kind is Kind.CITY:
        found.extend(_traffic(scene, pal, geo, rng))
    if scene.kind is Kind.SPACE:
        found.extend(_space_lights(geo, rng))
    return found


def _birds(pal: Palette, geo: Geometry, rng: np.random.Generator) -> Swarm:
    heading = 0.05 if rng.random() < 0.5 else -0.05
    sky = (0.12 * geo.horizon / geo.height, 0.45 * geo.horizon / geo.height)
    return _swarm(
        geo,
        rng,
        7,
        _bird(geo.unit * 0.022),
        _shade(pal.near, 0.4),
        rows=sky,
        vx=(heading * 0.9, heading * 1.1),
        sway=0.008,
        freq=(1.0, 2.0),
        alpha=(0.8, 0.95),
        span=geo.width * 1.5,
    )


def _space_lights(geo: Geometry, rng: np.random.Generator) -> list[Swarm]:
    twinkle = _swarm(
        geo,
        rng,
        40,
        _dot(geo.unit * 0.0035, glow=True),
        (255, 255, 255),
        rows=(0.0, 0.5),
        blink=0.9,
        freq=(0.5, 2.0),
    )
    # Few and with a wide domain, so a shooting star is an occasional event.
    shooting = _swarm(
        geo,
        rng,
        2,
        _streak(geo.unit * 0.09, 2.0),
        (255, 255, 255),
        vx=(0.5, 0.7),
        vy=(0.2, 0.3),
        alpha=(0.7, 0.9),
        span=geo.width * 3,
    )
    return [twinkle, shooting]


def _glitter(scene: Scene, pal: Palette, geo: Geometry, rng: np.random.Generator) -> Swarm:
    """Sparkles on the water under the sun, drifting with the sky as the camera pans."""
    sun_x, _, radius = _sun_place(geo, scene)
    water = (geo.height - geo.horizon) / geo.height
    low = geo.horizon / geo.height
    sky_speed = scene.pan * geo.unit * SKY_DEPTH
    swarm = _swarm(
        geo,
        rng,
        70,
        _dot(geo.unit * 0.003, glow=True),
        mix(pal.sun, (255, 255, 255), 0.5),
        rows=(low + 0.005, low + water * 0.5),
        freq=(2.0, 5.0),
        blink=0.9,
        span=geo.period,
    )
    depth = (swarm.y0 - swarm.margin - geo.horizon) / max(1.0, geo.height - geo.horizon)
    x0 = sun_x + swarm.margin + rng.normal(0, 1, swarm.x0.size) * radius * (0.5 + 2.5 * depth)
    return replace(swarm, x0=x0, vx=np.full(x0.size, -sky_speed))


def _traffic(scene: Scene, pal: Palette, geo: Geometry, rng: np.random.Generator) -> list[Swarm]:
    u = geo.unit
    street = (geo.horizon + 0.17 * geo.height) / geo.height
    lanes = ((0.3, (255, 244, 214), -0.3), (0.75, (255, 60, 50), 0.22))
    lights = _pair(u * 0.02, u * 0.004)
    drift = -scene.pan
    return [
        _swarm(
            geo,
            rng,
            6,
            lights,
            color,
            rows=(street + (1 - street) * at,) * 2,
            vx=(speed * 0.8 + drift, speed * 1.2 + drift),
            alpha=(0.85, 1.0),
            span=geo.width * 2,
        )
        for at, color, speed in lanes
    ]
