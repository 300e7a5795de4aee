"""Input reference images: checked for type and size before a request is accepted."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from reelforge.domain.errors import InputError
from reelforge.domain.upstream import ImageBytes

MAX_REFERENCE_BYTES = 20 * 1024 * 1024
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def check_reference(
    data: bytes, width: int, height: int, field: str = "input_reference"
) -> ImageBytes:
    """The image as the provider will get it; its real format decides, not the declared type."""
    if len(data) > MAX_REFERENCE_BYTES:
        raise InputError(field, f"must be at most {MAX_REFERENCE_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            found, size = image.format, image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InputError(field, "must be a JPEG, PNG or WebP image") from None
    if found not in _FORMATS:
        raise InputError(field, f"must be a JPEG, PNG or WebP image (got {found})")
    if size != (width, height):
        raise InputError(
            field,
            f"must be exactly {width}x{height} to match the video's size (got {size[0]}x{size[1]})",
        )
    return ImageBytes(data=data, content_type=_FORMATS[found])
