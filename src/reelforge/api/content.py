"""Delivering archived content over HTTP: sent from disk by the server (or by nginx), with Range
and ETag, or by a presigned redirect to the bucket."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from reelforge.api.errors import ApiError
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import ArchivedObject
from reelforge.runtime import Runtime
from reelforge.storage import ObjectNotFoundError, Storage, StorageError

_RANGE = re.compile(r"(\d*)-(\d*)")
_MAX_DIGITS = 18
# More ranges than a player or a download manager asks for; past it the whole file is sent,
# which RFC 9110 allows, rather than a multipart body of tiny parts.
MAX_RANGES = 16
# Long enough to start a download (a started GET finishes however long it takes), short
# enough that a leaked URL is soon worthless. Redirects are not cached past it.
PRESIGNED_TTL = timedelta(minutes=5)
OWNER_CACHE = "private, max-age=3600"
# A single range up to this size is read at once and sent as one body (bench/delivery.md).
ONE_READ = 1024 * 1024


@dataclass(frozen=True)
class Content:
    """One archived file and how to label it; `etag` None: the file's own (size and mtime)."""

    key: str
    variant: Variant
    filename: str
    cache_control: str
    etag: str | None = None


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """(start, length) of each range a `Range` header asks for, None for the whole object.

    A header this server doesn't understand is ignored (the whole object), as RFC 9110 allows;
    one whose every range lies past the end is unsatisfiable (416).
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    parts = spec.split(",")
    if len(parts) > MAX_RANGES:
        return None
    wanted: list[tuple[int, int]] = []
    for part in parts:
        match = _RANGE.fullmatch(part.strip())
        if match is None or match.groups() == ("", ""):
            return None
        one = _one_range(*(_position(digits) for digits in match.groups()), size=size)
        if one is not None:
            wanted.append(one)
    if not wanted:
        raise _unsatisfiable(size)
    return wanted


def _one_range(first: int | None, last: int | None, *, size: int) -> tuple[int, int] | None:
    if first is None:
        assert last is not None
        length = min(last, size)
        return (size - length, length) if length > 0 else None
    end = min(last, size - 1) if last is not None else size - 1
    if first >= size or end < first:
        return None
    return first, end - first + 1


def _position(digits: str) -> int | None:
    """A byte position; past 18 digits it is beyond any object (and int() would refuse it)."""
    if digits == "":
        return None
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


async def content_response(
    runtime: Runtime, request: Request, stored: ArchivedObject, variant: Variant, video_id: str
) -> Response:
    """An archived file its reader was found allowed to read; its ETag is its sha256."""
    content = Content(
        key=stored.key,
        variant=variant,
        filename=f"{video_id}.{variant.extension}",
        cache_control=OWNER_CACHE,
        etag=f'"{stored.sha256}"',
    )
    return await deliver(runtime, request, content)


async def deliver(runtime: Runtime, request: Request, content: Content) -> Response:
    """Answer for `content` whoever was found allowed to read it: 304, a presigned redirect,
    an X-Accel-Redirect for nginx, or the file (whole, one range or several) from disk."""
    storage = runtime.storage
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": content.cache_control,
        "Content-Disposition": f'attachment; filename="{content.filename}"',
    }
    if content.etag is not None:
        headers["ETag"] = content.etag
        if content.etag in _etags(request.headers.get("if-none-match")):
            return Response(status_code=304, headers=headers)
    # A bucket that can sign serves the bytes itself (Range included), so the API process
    # never carries video traffic. 307 keeps the method; clients resend Range on a redirect.
    # The signed URL can't carry Content-Disposition: obstore signs no extra query parameters.
    url = await storage.presigned_url(content.key, PRESIGNED_TTL)
    if url is not None:
        redirect = {"Cache-Control": "private, no-store"}
        if content.etag is not None:
            redirect["ETag"] = content.etag
        return RedirectResponse(url, status_code=307, headers=redirect)
    path = storage.local_path(content.key)
    if path is None:
        return await _streamed(storage, request, content, headers)
    prefix = runtime.settings.accel_redirect_prefix
    if prefix is not None:
        # nginx sends the file (with Range) from an `internal` location; see docs/deploy.md.
        headers["X-Accel-Redirect"] = prefix + quote(content.key)
        headers["Content-Type"] = content.variant.default_content_type
        return Response(status_code=200, headers=headers)
    return await _from_disk(request, path, content, headers)


async def _from_disk(
    request: Request, path: Path, content: Content, headers: dict[str, str]
) -> Response:
    try:
        # One stat of a local file: cheaper inline than a hop to a worker thread.
        stat = os.stat(path)
    except FileNotFoundError:
        raise ObjectNotFoundError(content.key) from None
    etag = headers.setdefault("ETag", _file_etag(stat))
    if etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    ranges = parse_ranges(request.headers.get("range"), stat.st_size)
    if ranges is not None and request.headers.get("if-range", etag) != etag:
        ranges = None
    media_type = content.variant.default_content_type
    if ranges is not None and len(ranges) == 1 and ranges[0][1] <= ONE_READ:
        # A player's seek: read at once and sent as one body.
        start, length = ranges[0]
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{stat.st_size}"
        headers["Content-Length"] = str(length)
        body = b"" if request.method == "HEAD" else await _read_range(path, start, length)
        return Response(body, status_code=206, headers=headers, media_type=media_type)
    response = DiskFile(path, stat, headers=headers, media_type=media_type)
    response.ranges = ranges
    return response


def _file_etag(stat: os.stat_result) -> str:
    """A file's own validator, as nginx makes one: its modification time and size."""
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


class DiskFile(FileResponse):
    """Starlette's file response, serving exactly the ranges decided here (None: all of it).

    The whole file goes out as `http.response.pathsend` where the server offers it (granian
    does), so the bytes never pass through Python; several ranges are read and sent by
    Starlette as one multipart/byteranges body.
    """

    def __init__(
        self, path: Path, stat: os.stat_result, *, headers: dict[str, str], media_type: str
    ) -> None:
        super().__init__(path, headers=headers, media_type=media_type, stat_result=stat)
        self.ranges: list[tuple[int, int]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kept = [(n, v) for n, v in scope["headers"] if n not in (b"range", b"if-range")]
        if self.ranges is not None:
            spec = ",".join(f"{start}-{start + length - 1}" for start, length in self.ranges)
            kept.append((b"range", f"bytes={spec}".encode()))
        await super().__call__({**scope, "headers": kept}, receive, send)


async def _read_range(path: Path, start: int, length: int) -> bytes:
    """What the page cache holds is read inline (a read that can't wait on the disk); only a
    range that needs the disk goes to a worker thread, so the event loop never blocks on it."""
    body = _read_cached(path, start, length)
    if body is None:
        body = await anyio.to_thread.run_sync(_read, path, start, length)
    return body


_NOWAIT = getattr(os, "RWF_NOWAIT", None)  # Linux 4.14+; elsewhere every read is threaded


def _read_cached(path: str | os.PathLike[str], start: int, length: int) -> bytes | None:
    """The range if the page cache holds all of it, else None (the disk would be waited on)."""
    if _NOWAIT is None:
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        buffer = bytearray(length)
        try:
            read = os.preadv(descriptor, [buffer], start, _NOWAIT)
        except (BlockingIOError, OSError):
            return None
        return bytes(buffer) if read == length else None
    finally:
        os.close(descriptor)


def _read(path: str | os.PathLike[str], start: int, length: int) -> bytes:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(descriptor, length, start)
    finally:
        os.close(descriptor)
    if len(data) != length:
        raise StorageError(f"{path} ended before its byte {start + length - 1}")
    return data


async def _streamed(
    storage: Storage, request: Request, content: Content, headers: dict[str, str]
) -> Response:
    """A store with neither files nor signed URLs (memory): stream it, one range at most."""
    info = await storage.head(content.key)
    ranges = parse_ranges(request.headers.get("range"), info.size)
    if ranges is not None and (
        len(ranges) > 1 or request.headers.get("if-range", content.etag) != content.etag
    ):
        ranges = None
    start, length = ranges[0] if ranges is not None else (0, info.size)
    stream = await storage.open(content.key, start, length)
    headers["Content-Length"] = str(stream.length)
    if ranges is not None:
        headers["Content-Range"] = f"bytes {stream.start}-{stream.end}/{info.size}"
    return StreamingResponse(
        stream.chunks,
        status_code=206 if ranges is not None else 200,
        headers=headers,
        media_type=content.variant.default_content_type,
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
