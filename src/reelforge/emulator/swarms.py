"""Swarms: moving sprites (snow, rain, embers, birds, traffic), as data the renderer animates."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from reelforge.emulator.canvas import SKY_DEPTH, Geometry, rng_for, sun_place
from reelforge.emulator.palette import RGB, Palette, mix, palette_of, shaded
from reelforge.emulator.scene import Kind, Scene, TimeOfDay, Weather


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
    pal = palette_of(scene)
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
    rng, u, area = rng_for(scene, "weather"), geo.unit, _density(geo)
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
    rng, u, area = rng_for(scene, "weather"), geo.unit, _density(geo)
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
    rng, drift = rng_for(scene, "weather"), -scene.pan
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
    rng, drift = rng_for(scene, "weather"), -scene.pan
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
    rng = rng_for(scene, "kind-swarms")
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
        shaded(pal.near, 0.4),
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
    sun_x, _, radius = sun_place(geo, scene)
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
