"""Thumbnails and spritesheets made here from a downloaded video, for vendors that make none.

The shapes match what the Videos protocol's own variants look like (and the emulator makes): a
WebP of the middle frame at half the video's size, and a JPEG grid of 5 x 5 frames spread evenly
over the video, each tile 256 px on its long edge.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
from PIL import Image

from reelforge.domain.upstream import ProviderProtocolError, Variant

THUMBNAIL_DIVISOR = 2
SPRITE_COLUMNS = 5
SPRITE_ROWS = 5
SPRITE_TILE_LONG_EDGE = 256


def previews(video: Path) -> dict[Variant, bytes]:
    """The thumbnail and spritesheet of an mp4 file; ProviderProtocolError if it isn't one.

    CPU-bound (it decodes the whole video, twice when the file doesn't say how many frames it
    has): call it in a worker thread.
    """
    try:
        total = _frame_count(video)
        if total == 0:
            raise ProviderProtocolError("the vendor's video has no frames")
        thumb_index = total // 2
        tiles = SPRITE_COLUMNS * SPRITE_ROWS
        wanted: dict[int, list[int]] = {}
        for k in range(tiles):
            wanted.setdefault(min(total - 1, (2 * k + 1) * total // (2 * tiles)), []).append(k)
        thumbnail: Image.Image | None = None
        sheet: Image.Image | None = None
        for index, frame in enumerate(_decoded(video)):
            if index != thumb_index and index not in wanted:
                continue
            image = frame.to_image()  # type: ignore[no-untyped-call]
            if index == thumb_index:
                width, height = image.size
                thumbnail = image.resize(
                    (max(1, width // THUMBNAIL_DIVISOR), max(1, height // THUMBNAIL_DIVISOR)),
                    Image.Resampling.BOX,
                )
            for k in wanted.get(index, ()):
                tile = _tile(image)
                if sheet is None:
                    sheet = Image.new(
                        "RGB", (tile.width * SPRITE_COLUMNS, tile.height * SPRITE_ROWS)
                    )
                row, column = divmod(k, SPRITE_COLUMNS)
                sheet.paste(tile, (column * tile.width, row * tile.height))
    except (av.error.FFmpegError, ValueError, IndexError) as error:
        raise ProviderProtocolError(f"the vendor's video could not be decoded: {error}") from error
    if thumbnail is None or sheet is None:
        raise ProviderProtocolError("the vendor's video has fewer frames than it announced")
    return {
        Variant.THUMBNAIL: _encode(thumbnail, "WEBP", quality=82, method=4),
        Variant.SPRITESHEET: _encode(sheet, "JPEG", quality=80),
    }


def _frame_count(video: Path) -> int:
    with av.open(str(video)) as container:
        announced = container.streams.video[0].frames
    if announced > 0:
        return int(announced)
    return sum(1 for _ in _decoded(video))


def _decoded(video: Path) -> Iterator[av.VideoFrame]:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def _tile(image: Image.Image) -> Image.Image:
    width, height = image.size
    scale = SPRITE_TILE_LONG_EDGE / max(width, height)
    return image.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX
    ).convert("RGB")


def _encode(image: Image.Image, kind: str, **options: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, kind, **options)
    return out.getvalue()
