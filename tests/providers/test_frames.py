"""Previews made locally with PyAV for vendors that make none."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from reelforge.domain.upstream import ProviderProtocolError, Variant
from reelforge.providers.frames import SPRITE_COLUMNS, SPRITE_ROWS, previews
from tests.providers.fakes.media import tiny_mp4


def test_thumbnail_is_half_size_webp_and_sheet_a_jpeg_grid(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(tiny_mp4(width=64, height=36, frames=30))

    made = previews(video)

    with Image.open(io.BytesIO(made[Variant.THUMBNAIL])) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("WEBP", (32, 18))
    with Image.open(io.BytesIO(made[Variant.SPRITESHEET])) as sheet:
        assert sheet.format == "JPEG"
        assert sheet.size == (256 * SPRITE_COLUMNS, 144 * SPRITE_ROWS)


def test_a_file_that_is_not_a_video_is_a_protocol_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"<html>not a video</html>")
    with pytest.raises(ProviderProtocolError):
        previews(junk)
