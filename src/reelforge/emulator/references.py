"""`input_reference` images: uploaded files, `data:` URLs and (optionally) fetched URLs, checked."""

from __future__ import annotations

import base64
import binascii
import io
import urllib.parse
import warnings
from typing import Any

import httpx
from PIL import Image

from reelforge.emulator.bodies import Upload, describe
from reelforge.emulator.errors import EmulatorError, invalid_type, invalid_value

PARAM = "input_reference"
MAX_IMAGE_URL_LENGTH = 20_971_520  # the spec's maxLength for `image_url`
SUPPORTED = "'image/jpeg', 'image/png', and 'image/webp'"


def sniff_image(data: bytes) -> str | None:
    """The image type from its magic bytes; part content-types are not trusted."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _decode_data_url(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise invalid_value(f"{PARAM}.image_url", f"Invalid '{PARAM}.image_url': bad data URL.")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise invalid_value(
            f"{PARAM}.image_url", f"Invalid '{PARAM}.image_url': the data URL is not valid base64."
        ) from None


async def _fetch(url: str, limit: int) -> bytes:
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise invalid_value(
                    f"{PARAM}.image_url",
                    f"Invalid '{PARAM}.image_url': fetching it answered HTTP "
                    f"{response.status_code}.",
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise invalid_value(
                        f"{PARAM}.image_url",
                        f"Invalid '{PARAM}.image_url': the image is too large.",
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise invalid_value(
            f"{PARAM}.image_url", f"Invalid '{PARAM}.image_url': could not fetch it ({exc})."
        ) from None


async def reference_bytes(value: Any, *, multipart: bool, fetch_urls: bool, limit: int) -> bytes:
    """The raw image bytes of an `input_reference` in any accepted form."""
    if isinstance(value, Upload):
        return value.data
    if not isinstance(value, dict):
        expected = "a file" if multipart else "an object"
        raise invalid_type(PARAM, expected, describe(value))
    keys = set(value)
    if keys == {"file_id"}:
        raise invalid_value(
            PARAM,
            f"Invalid '{PARAM}': file_id references are not supported by this emulator; "
            "upload the image or pass it as an image_url (a data: URL).",
        )
    if keys != {"image_url"}:
        raise invalid_value(
            PARAM, f"Invalid '{PARAM}': expected exactly one of 'image_url' or 'file_id'."
        )
    url = value["image_url"]
    if not isinstance(url, str):
        raise invalid_type(f"{PARAM}.image_url", "a string", describe(url))
    if len(url) > MAX_IMAGE_URL_LENGTH:
        raise EmulatorError(
            400,
            f"Invalid '{PARAM}.image_url': string too long. Expected a string with maximum length "
            f"{MAX_IMAGE_URL_LENGTH}, but got a string with length {len(url)} instead.",
            param=f"{PARAM}.image_url",
            code="string_above_max_length",
        )
    scheme = url.split(":", 1)[0].lower()
    if scheme == "data":
        return _decode_data_url(url)
    if scheme in ("http", "https"):
        if not fetch_urls:
            raise invalid_value(
                f"{PARAM}.image_url",
                f"Invalid '{PARAM}.image_url': this emulator does not fetch URLs (set "
                "REELFORGE_EMULATOR_FETCH_IMAGE_URLS=true); use a data: URL or upload the file.",
            )
        return await _fetch(url, limit)
    raise invalid_value(
        f"{PARAM}.image_url", f"Invalid '{PARAM}.image_url': expected an https or data: URL."
    )


def check_image(data: bytes, width: int, height: int) -> None:
    """A decodable JPEG/PNG/WebP of exactly the requested size, or the real API's 400."""
    if sniff_image(data) is None:
        raise invalid_value(
            PARAM, f"Invalid file format for '{PARAM}'. Supported formats are: {SUPPORTED}."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            size = image.size
            if size == (width, height):
                image.load()  # bounded: at most 1920x1080 reaches this line
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise invalid_value(PARAM, f"Invalid '{PARAM}': the image could not be decoded.") from None
    if size != (width, height):
        raise invalid_value(PARAM, "Inpaint image must match the requested width and height")
