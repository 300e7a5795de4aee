"""Content streams over what an adapter holds itself: bytes made here, or a downloaded file."""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from reelforge.domain.upstream import ProviderError, ProviderNotFound, Variant
from reelforge.providers.frames import previews

CHUNK = 1 << 20


class BytesStream:
    """A `ContentStream` of bytes already in memory (a thumbnail or spritesheet made here)."""

    def __init__(self, data: bytes, variant: Variant) -> None:
        self._data = data
        self._variant = variant

    @property
    def content_type(self) -> str:
        return self._variant.default_content_type

    @property
    def content_length(self) -> int | None:
        return len(self._data)

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        size = chunk_size or CHUNK
        for start in range(0, len(self._data), size):
            yield self._data[start : start + size]


class FileStream:
    """A `ContentStream` over a local file, read chunk by chunk."""

    def __init__(self, path: Path, content_type: str) -> None:
        self._path = path
        self._content_type = content_type

    @property
    def content_type(self) -> str:
        return self._content_type

    @property
    def content_length(self) -> int | None:
        return self._path.stat().st_size

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self._path, "rb") as handle:
            while chunk := await handle.read(chunk_size or CHUNK):
                yield chunk


@asynccontextmanager
async def scratch_file(suffix: str = ".mp4") -> AsyncIterator[Path]:
    """A temporary file path, removed when the block exits."""
    descriptor, name = tempfile.mkstemp(prefix="reelforge-", suffix=suffix)
    os.close(descriptor)
    path = Path(name)
    try:
        yield path
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


class Previews:
    """Thumbnails and spritesheets made here from a downloaded video, kept for the engine's next
    calls: it asks for the video, then each preview, of one job in a row, so one download makes
    all three. A video PyAV cannot read gets none (`ProviderNotFound`, so the engine archives
    the video without them rather than retrying)."""

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._made: OrderedDict[str, dict[Variant, bytes] | ProviderError] = OrderedDict()

    def get(self, key: str) -> dict[Variant, bytes] | None:
        made = self._made.get(key)
        if isinstance(made, ProviderError):
            raise made
        return made

    async def make(self, key: str, video: Path) -> dict[Variant, bytes]:
        try:
            made: dict[Variant, bytes] | ProviderError = await anyio.to_thread.run_sync(
                previews, video
            )
        except ProviderError as error:
            made = ProviderNotFound(f"no previews: {error.message}", code="no_preview")
        self._made[key] = made
        while len(self._made) > self._keep:
            self._made.popitem(last=False)
        return self.get(key) or {}
