"""The emulator's soundtrack: the sound of each shot's scene, cut where the picture cuts.

Sora's MP4s carry synchronized audio; the emulator's carry a sound of the scene on screen: wind,
surf, traffic or fire under a soft chord (major by day, minor at sunset and night), with rain,
birds, crickets or crackles where the scene has them. Every sample is a function of the scene
and of its absolute position in the video, never of the clip's length: an extension replays its
source's sound sample for sample, and a shot's sound carries on under the next one while they
cross-fade, as the pictures do.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from reelforge.emulator.scene import Kind, Scene, TimeOfDay, Weather

SAMPLE_RATE = 48_000
Samples = NDArray[np.float32]

# Noise is made in blocks two hops long, overlapped by half under a power-complementary window,
# so independent blocks join without a seam or a dip in loudness.
_HOP = SAMPLE_RATE // 2
_WINDOW = np.sin(np.pi * np.arange(2 * _HOP) / (2 * _HOP))
_EVENT_SECONDS = 0.25  # the longest chirp or crackle
_MINOR = {TimeOfDay.SUNSET, TimeOfDay.NIGHT}
_ROOTS_HZ = (98.0, 110.0, 123.5, 130.8, 146.8)  # G2 to D3


@dataclass(frozen=True)
class Shot:
    scene: Scene
    start: int  # first sample, from the start of the video
    count: int  # samples


@dataclass(frozen=True)
class _Voice:
    """How a scene sounds: its noise (level and brightness), its chord, its events."""

    rumble: float  # level of the low noise (wind, surf, traffic, fire)
    cutoff_hz: float  # its brightness
    swell_hz: float  # how fast it rises and falls (surf, gusts)
    hiss: float  # level of the high noise (rain)
    chord: float  # level of the chord
    events: tuple[str, float] | None  # a kind of event and how many a second


def soundtrack(shots: Sequence[Shot], fade: int) -> Samples:
    """Mono samples in [-1, 1] for `shots` laid end to end; each shot after the first fades in
    over `fade` samples while the one before it fades out."""
    total = shots[-1].start + shots[-1].count if shots else 0
    out = np.zeros(total, np.float32)
    previous: Scene | None = None
    for shot in shots:
        out[shot.start : shot.start + shot.count] = bed(shot.scene, shot.start, shot.count)
        if previous is not None and previous != shot.scene:
            span = min(fade, shot.count)
            rising = np.arange(1, span + 1, dtype=np.float32) / (span + 1)
            before = bed(previous, shot.start, span)
            head = out[shot.start : shot.start + span]
            head[...] = before * (1 - rising) + head * rising
        previous = shot.scene
    return out


def bed(scene: Scene, first: int, count: int) -> Samples:
    """The scene's sound from sample `first` for `count` samples."""
    voice = _voice(scene)
    key = zlib.crc32(repr(scene).encode())
    t = (first + np.arange(count)) / SAMPLE_RATE
    phase = key % 628 / 100  # in [0, 2 pi): scenes don't swell in step
    swell = 0.65 + 0.35 * np.sin(2 * np.pi * voice.swell_hz * t + phase)
    sound = voice.rumble * swell * _noise(key, voice.cutoff_hz, first, count)
    if voice.hiss:
        sound += voice.hiss * _noise(key ^ 0x5EED, -2500.0, first, count)
    sound += voice.chord * _chord(scene, t)
    if voice.events is not None:
        sound += _events(key, voice.events, first, count)
    return np.tanh(sound).astype(np.float32)


def _voice(scene: Scene) -> _Voice:
    quiet = scene.time is TimeOfDay.NIGHT
    rumble, cutoff, swell = {
        Kind.OCEAN: (0.3, 900.0, 0.11),
        Kind.CITY: (0.2, 220.0, 0.05),
        Kind.FIRE: (0.25, 300.0, 0.3),
        Kind.SPACE: (0.03, 150.0, 0.02),
    }.get(scene.kind, (0.15, 450.0, 0.07))
    events: tuple[str, float] | None = None
    if scene.kind is Kind.FIRE or scene.weather is Weather.EMBERS:
        events = ("crackle", 6.0)
    elif scene.weather is Weather.FIREFLIES or (quiet and scene.kind in (Kind.MEADOW, Kind.FOREST)):
        events = ("cricket", 3.0)
    elif scene.kind in (Kind.MEADOW, Kind.FOREST) and scene.weather is Weather.CLEAR:
        events = ("chirp", 1.5)
    return _Voice(
        rumble=rumble * (0.7 if quiet else 1.0),
        cutoff_hz=cutoff * (0.6 if scene.weather is Weather.SNOW else 1.0),
        swell_hz=swell,
        hiss=0.15 if scene.weather is Weather.RAIN else 0.0,
        chord=0.3 if scene.kind is Kind.SPACE else 0.05,
        events=events,
    )


def _noise(key: int, cutoff_hz: float, first: int, count: int) -> Samples:
    """Noise below `cutoff_hz` (above it, for a negative cutoff) at unit loudness."""
    out = np.zeros(count, np.float32)
    shape = _shape(cutoff_hz)
    # Block -1 starts half a block before the video, so its first samples are at full level.
    for block in range(first // _HOP - 1, (first + count) // _HOP + 1):
        start = block * _HOP
        lo, hi = max(start, first), min(start + 2 * _HOP, first + count)
        if lo >= hi:
            continue
        white = np.random.default_rng([key, block + 1]).standard_normal(2 * _HOP)
        shaped = np.fft.irfft(np.fft.rfft(white) * shape, 2 * _HOP) * _WINDOW
        out[lo - first : hi - first] += shaped[lo - start : hi - start]
    return out


@cache
def _shape(cutoff_hz: float) -> NDArray[np.float64]:
    """A gentle low-pass (high-pass, for a negative cutoff) scaled to keep unit loudness."""
    frequencies = np.fft.rfftfreq(2 * _HOP, 1 / SAMPLE_RATE)
    ratio = frequencies / abs(cutoff_hz)
    gain = 1 / (1 + ratio**2) if cutoff_hz > 0 else ratio**2 / (1 + ratio**2)
    result: NDArray[np.float64] = gain / np.sqrt(np.mean(gain**2))
    return result


def _chord(scene: Scene, t: NDArray[np.float64]) -> NDArray[np.float64]:
    root = _ROOTS_HZ[scene.layout_seed % len(_ROOTS_HZ)]
    third = 1.1892 if scene.time in _MINOR else 1.2599  # equal-tempered minor or major third
    breath = 0.75 + 0.25 * np.sin(2 * np.pi * 0.2 * t)
    tones = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, third, 1.4983, 2.0))
    result: NDArray[np.float64] = breath * tones / 4
    return result


def _events(key: int, events: tuple[str, float], first: int, count: int) -> Samples:
    """Short sounds (bird chirps, cricket pulses, fire crackles) at places each second's seed
    decides; one that began before `first` is heard to its end."""
    kind, rate = events
    out = np.zeros(count, np.float32)
    reach = int(_EVENT_SECONDS * SAMPLE_RATE)
    for second in range(max((first - reach) // SAMPLE_RATE, 0), (first + count) // SAMPLE_RATE + 1):
        rng = np.random.default_rng([key, second, 1])
        for offset in rng.uniform(0, SAMPLE_RATE, rng.poisson(rate)):
            sound = _EVENT_SOUNDS[kind](rng)
            at = second * SAMPLE_RATE + int(offset) - first
            lo, hi = max(at, 0), min(at + len(sound), count)
            if lo < hi:
                out[lo:hi] += sound[lo - at : hi - at]
    return out


def _chirp(rng: np.random.Generator) -> Samples:
    n = int(rng.uniform(0.05, 0.12) * SAMPLE_RATE)
    sweep = np.linspace(rng.uniform(2500, 3500), rng.uniform(3500, 5000), n)
    phase = 2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE
    return (0.12 * np.sin(phase) * np.hanning(n)).astype(np.float32)


def _cricket(rng: np.random.Generator) -> Samples:
    n = int(0.2 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pulses = (np.sin(2 * np.pi * 30 * t) > 0.3).astype(np.float64)
    return (0.05 * pulses * np.sin(2 * np.pi * rng.uniform(4200, 4800) * t) * np.hanning(n)).astype(
        np.float32
    )


def _crackle(rng: np.random.Generator) -> Samples:
    n = int(rng.uniform(0.005, 0.02) * SAMPLE_RATE)
    decay = np.exp(-np.arange(n) / (n / 4))
    return (rng.uniform(0.2, 0.5) * rng.standard_normal(n) * decay).astype(np.float32)


_EVENT_SOUNDS = {"chirp": _chirp, "cricket": _cricket, "crackle": _crackle}
