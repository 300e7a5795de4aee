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
            if found not in _FORMATS:
                raise InputError(field, f"must be a JPEG, PNG or WebP image (got {found})")
            if size != (width, height):
                raise InputError(
                    field,
                    f"must be exactly {width}x{height} to match the video's size "
                    f"(got {size[0]}x{size[1]})",
                )
            # The header alone can be valid over pixels that don't decode; the provider would
            # fail the video later. Decoded only now, once its size is known to be the video's.
            image.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InputError(field, "must be a JPEG, PNG or WebP image") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise InputError(field, "is not a readable image: its pixels don't decode") from None
    return ImageBytes(data=data, content_type=_FORMATS[found])
