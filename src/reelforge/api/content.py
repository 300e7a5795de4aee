"""Delivering archived content over HTTP: a presigned redirect, or streamed with Range and ETag."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from reelforge.api.errors import ApiError
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import ArchivedObject
from reelforge.services.videos import Videos

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_MAX_DIGITS = 18
# Long enough to start a download (a started GET finishes however long it takes), short
# enough that a leaked URL is soon worthless. Redirects are not cached past it.
PRESIGNED_TTL = timedelta(minutes=5)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single-range `Range` header, None for the whole object.

    Multiple ranges are answered with the whole object, which RFC 9110 allows.
    """
    if header is None or "," in header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = (_position(digits) for digits in match.groups())
    if first is None:
        assert last is not None
        length = min(last, size)
        if length == 0:
            raise _unsatisfiable(size)
        return size - length, length
    start = first
    end = min(last, size - 1) if last is not None else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, end - start + 1


def _position(digits: str) -> int | None:
    """A byte position; past 18 digits it is beyond any object (and int() would refuse it)."""
    if digits == "":
        return None
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


async def content_response(
    videos: Videos, request: Request, stored: ArchivedObject, variant: Variant, video_id: str
) -> Response:
    etag = f'"{stored.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        "Content-Disposition": f'attachment; filename="{video_id}.{variant.extension}"',
    }
    if etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    # A bucket that can sign serves the bytes itself (Range included), so the API process
    # never carries video traffic. 307 keeps the method; clients resend Range on a redirect.
    # The signed URL can't carry Content-Disposition: obstore signs no extra query parameters.
    url = await videos.archived_url(stored, PRESIGNED_TTL)
    if url is not None:
        return RedirectResponse(
            url, status_code=307, headers={"ETag": etag, "Cache-Control": "private, no-store"}
        )
    wanted = parse_range(request.headers.get("range"), stored.size)
    if wanted is not None and request.headers.get("if-range", etag) != etag:
        wanted = None
    start, length = wanted if wanted is not None else (0, stored.size)
    stream = await videos.open_archived(stored, start, length)
    headers["Content-Length"] = str(stream.length)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {stream.start}-{stream.end}/{stored.size}"
    return StreamingResponse(
        stream.chunks,
        status_code=status,
        headers=headers,
        media_type=variant.default_content_type,
    )


def _etags(header: str | None) -> set[str]:
    if header is None:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(
        416,
        "range_not_satisfiable",
        f"Range outside the object's {size} bytes",
        field="Range",
        headers={"Content-Range": f"bytes */{size}"},
    )
