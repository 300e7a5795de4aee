"""Content responses: byte ranges, throttled streaming and deliberately truncated bodies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from starlette.responses import Response, StreamingResponse

from reelforge.emulator.errors import EmulatorError

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_CHUNK = 64 * 1024


class Unsatisfiable(Exception):
    """The Range header is valid but asks for bytes past the end."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `bytes=a-b` / `a-` / `-n` range, or None to send everything.

    Syntactically invalid and multi-range headers are ignored (RFC 9110 allows that);
    a well-formed range that selects nothing raises Unsatisfiable (416).
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        count = int(last)
        if count == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - count), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid, so ignored
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(end, size - 1))


def unsatisfiable(size: int) -> EmulatorError:
    return EmulatorError(
        416,
        f"Requested range not satisfiable: the content is {size} bytes.",
        code="range_not_satisfiable",
        headers={"content-range": f"bytes */{size}"},
    )


async def _stream(data: bytes, limit: int, bytes_per_second: int | None) -> AsyncIterator[bytes]:
    """Yield `data[:limit]`, paced to `bytes_per_second` when set."""
    step = _CHUNK
    pause = 0.0
    if bytes_per_second:
        # Small chunks about 20 times a second keep the pace smooth.
        step = max(1, min(_CHUNK, bytes_per_second // 20))
        pause = step / bytes_per_second
    for offset in range(0, limit, step):
        if pause and offset:
            await anyio.sleep(pause)
        yield data[offset : min(offset + step, limit)]


def content_response(
    data: bytes,
    *,
    media_type: str,
    range_header: str | None,
    etag: str,
    bytes_per_second: int | None,
    truncate_fraction: float | None,
) -> Response:
    """200 or 206 with exact Content-Length; faults only change how the bytes are sent.

    Truncation keeps the promised Content-Length and ends the body early, so a real server
    closes the connection and the client sees an incomplete message, as with a dropped link.
    """
    size = len(data)
    try:
        selected = parse_range(range_header, size)
    except Unsatisfiable:
        raise unsatisfiable(size) from None
    headers = {"accept-ranges": "bytes", "etag": etag}
    status = 200
    body = data
    if selected is not None:
        status = 206
        body = data[selected.start : selected.end + 1]
        headers["content-range"] = f"bytes {selected.start}-{selected.end}/{size}"
    headers["content-length"] = str(len(body))
    if bytes_per_second is None and truncate_fraction is None:
        return Response(body, status_code=status, media_type=media_type, headers=headers)
    limit = len(body) if truncate_fraction is None else int(len(body) * truncate_fraction)
    return StreamingResponse(
        _stream(body, limit, bytes_per_second),
        status_code=status,
        media_type=media_type,
        headers=headers,
    )
