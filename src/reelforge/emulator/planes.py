"""YUV 4:2:0 frame planes: conversion from and to RGB, pooling and blending."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from reelforge.emulator.canvas import U8
from reelforge.emulator.palette import RGB

Planes = tuple[U8, U8, U8]


def rgb_to_yuv(rgb: U8) -> Planes:
    """BT.709 limited-range 4:2:0 planes, in 16-bit integer arithmetic (fast, same everywhere)."""
    r, g, b = (rgb[..., k].astype(np.uint16) for k in range(3))
    y = r * 47
    y += g * 157
    y += b * 16
    y += 16 * 256 + 128
    y >>= 8
    r, g, b = pool_mean(r), pool_mean(g), pool_mean(b)
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


def pool_mean(channel: NDArray[np.uint16]) -> NDArray[np.uint16]:
    total = channel[0::2, 0::2] + channel[1::2, 0::2]
    total += channel[0::2, 1::2]
    total += channel[1::2, 1::2]
    total += 2
    total >>= 2
    return total


def color_yuv(color: RGB) -> tuple[int, int, int]:
    y, u, v = rgb_to_yuv(np.array([[color] * 2] * 2, dtype=np.uint8))
    return int(y[0, 0]), int(u[0, 0]), int(v[0, 0])


def blend_planes(dst: Planes, src: Planes, weight: int) -> None:
    """dst moves toward src by weight/128."""
    for d, s in zip(dst, src, strict=True):
        delta = s.astype(np.int16) - d
        delta *= weight
        delta >>= 7
        delta += d
        d[...] = delta
