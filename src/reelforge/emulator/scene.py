"""The scene the emulator picks for a prompt, and how remixes and extensions change it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

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
