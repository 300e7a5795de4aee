"""The prompt card: the translucent caption drawn over every frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from reelforge.emulator.canvas import U8, Geometry, even
from reelforge.emulator.palette import Palette, mix
from reelforge.emulator.planes import (
    Planes,
    pool_mean,
    rgb_to_yuv,
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Overlay:
    """A fixed translucent picture, blended with precomputed weights (premultiplied colour)."""

    x: int
    y: int
    keep: tuple[NDArray[np.uint16], NDArray[np.uint16]]  # 256 - alpha, luma and chroma size
    premultiplied: tuple[NDArray[np.uint16], NDArray[np.uint16], NDArray[np.uint16]]

    @staticmethod
    def of(rgba: U8, x: int, y: int) -> Overlay:
        alpha = (rgba[..., 3].astype(np.uint16) * 256 + 127) // 255
        chroma_alpha = pool_mean(alpha)
        y_plane, u_plane, v_plane = rgb_to_yuv(np.ascontiguousarray(rgba[..., :3]))
        weights = (alpha, chroma_alpha)
        premultiplied = tuple(
            p.astype(np.uint16) * weights[min(k, 1)]
            for k, p in enumerate((y_plane, u_plane, v_plane))
        )
        return Overlay(
            x,
            y,
            (256 - weights[0], 256 - weights[1]),
            (premultiplied[0], premultiplied[1], premultiplied[2]),
        )

    def draw(self, out: Planes) -> None:
        for k, plane in enumerate(out):
            shift = min(k, 1)
            pre = self.premultiplied[k]
            y, x = self.y >> shift, self.x >> shift
            region = plane[y : y + pre.shape[0], x : x + pre.shape[1]]
            mixed = region * self.keep[shift]
            mixed += pre
            mixed >>= 8
            region[...] = mixed


def prompt_card(prompt: str, label: str, pal: Palette, geo: Geometry) -> Overlay:
    size = max(12, round(geo.unit * 0.04))
    font, small = (
        ImageFont.load_default(size=size),
        ImageFont.load_default(size=max(9, round(size * 0.55))),
    )
    margin, pad = even(geo.unit * 0.045), round(size * 0.7)
    landscape = geo.width > geo.height
    width = even(
        min(geo.width - 2 * margin, geo.width * 0.62) if landscape else geo.width - 2 * margin
    )
    line_height, label_height = round(size * 1.3), round(size * 1.05)
    # At most half the frame's height, however small the frame.
    room = (geo.height // 2 - pad * 1.6 - label_height) // line_height
    lines = _wrap(prompt, font, width - 2 * pad, max(1, min(3 if landscape else 5, int(room))))
    height = even(pad * 1.6 + label_height + line_height * len(lines))
    card = Image.new("RGBA", (width, height))
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=size * 0.5, fill=(*pal.card, 176))
    draw.text(
        (pad, pad * 0.8),
        label.upper(),
        font=small,
        fill=(*mix(pal.accent, (255, 255, 255), 0.45), 255),
    )
    shadow = max(1, size // 16)
    for i, line in enumerate(lines):
        at = (pad, pad * 0.8 + label_height + i * line_height)
        draw.text((at[0] + shadow, at[1] + shadow), line, font=font, fill=(0, 0, 0, 200))
        draw.text(at, line, font=font, fill=(255, 255, 255, 255))
    return Overlay.of(np.asarray(card), margin, even(geo.height - margin - height))


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most `max_lines`, ending in an ellipsis when the text is cut."""
    # No glyph is narrower than a pixel, so this much text always fills the card; measuring
    # all of a 32,000-character prompt would only cost time.
    words = iter(text[: max_lines * int(width)].split())
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width and len(lines) < max_lines:
            cut = _fitting(current, font, width)
            lines.append(current[:cut])
            current = current[cut:]
        if len(lines) >= max_lines:
            return _ellipsized(lines[:max_lines], font, width)
    if current:
        lines.append(current)
    return lines if len(lines) <= max_lines else _ellipsized(lines[:max_lines], font, width)


def _fitting(word: str, font: Font, width: float) -> int:
    """How many leading characters of `word` fit in `width` (at least one); a binary search."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(word[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _ellipsized(lines: list[str], font: Font, width: float) -> list[str]:
    last = lines[-1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return [*lines[:-1], last.rstrip() + "…"]
