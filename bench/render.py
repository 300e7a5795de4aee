"""Benchmark the emulator's renderer: wall time per rendered second, beside an encoding floor.

Run with `uv run python bench/render.py [--repeat N] [--save]`. For every catalog size it renders a
4-second video and, in the same run, encodes as many constant black frames (and as much silence)
with the renderer's own encoder settings: that anchor is what encoding alone costs on this
machine right now, so the two columns stay comparable on a busy or a quiet machine. Each figure
is the best of N runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import av
import numpy as np

from reelforge.emulator.render import FPS, RenderSpec, _Encoder, render
from reelforge.emulator.sound import SAMPLE_RATE

SIZES = ((1280, 720), (720, 1280), (1792, 1024), (1024, 1792), (1920, 1080), (1080, 1920))
SECONDS = 4
PROMPTS = (
    "a calm ocean at sunset with sailboats drifting past",
    "a neon city street at night in the rain",
)
GOAL_SIZE, GOAL_WALL = (1280, 720), 2.0  # the floor: a 4 s 720p video in under 2 s
OUT = Path(__file__).parent / "out"


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(width: int, height: int, repeat: int) -> tuple[float, list[float]]:
    """Best anchor and best render time per prompt; runs interleave, so they share the load."""
    anchor, walls = float("inf"), [float("inf")] * len(PROMPTS)
    for _ in range(repeat):
        anchor = min(anchor, timed(partial(encode_black, width, height, SECONDS * FPS)))
        for number, prompt in enumerate(PROMPTS):
            spec = RenderSpec(prompt, width, height, SECONDS)
            walls[number] = min(walls[number], timed(partial(render, spec)))
    return anchor, walls


def encode_black(width: int, height: int, frames: int) -> bytes:
    # Black and silent, through the renderer's own encoder: pictures and sound, as it encodes them.
    encoder = _Encoder(width, height, np.zeros(frames * SAMPLE_RATE // FPS, np.float32))
    black = av.VideoFrame(width, height, "yuv420p")
    for plane, level in zip(black.planes, (16, 128, 128), strict=True):
        plane.update(bytes([level]) * plane.buffer_size)
    for index in range(frames):
        black.pts = index
        encoder.push(black)
    return encoder.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--save", action="store_true", help=f"write the videos to {OUT}/")
    args = parser.parse_args()

    print(f"{SECONDS} s videos at {FPS} fps, best of {args.repeat} interleaved runs")
    print(f"{'size':>10} {'prompt':<7} {'render':>8} {'per s':>7} {'anchor':>8} {'x anchor':>9}")
    goal_walls: list[float] = []
    for width, height in SIZES:
        anchor, walls = measure(width, height, args.repeat)
        for number, wall in enumerate(walls, start=1):
            print(
                f"{width:>5}x{height:<4} #{number:<6} {wall:>7.2f}s "
                f"{wall / SECONDS:>6.3f}s {anchor:>7.2f}s {wall / anchor:>8.1f}x"
            )
        if (width, height) == GOAL_SIZE:
            goal_walls = walls
        if args.save:
            OUT.mkdir(exist_ok=True)
            for number, prompt in enumerate(PROMPTS, start=1):
                video = render(RenderSpec(prompt, width, height, SECONDS)).video
                (OUT / f"{width}x{height}-{number}.mp4").write_bytes(video)
    goal_wall = max(goal_walls)
    verdict = "PASS" if goal_wall < GOAL_WALL else "MISS"
    print(
        f"goal: a {SECONDS} s {GOAL_SIZE[0]}x{GOAL_SIZE[1]} video in under {GOAL_WALL:.0f} s "
        f"wall (slowest prompt): {goal_wall:.2f} s -> {verdict}"
    )


if __name__ == "__main__":
    main()
