"""Every call made upstream, counted by provider, operation and outcome, for `/metrics`.

Each process counts its own calls in memory and writes its running totals to the database
(`db.stats.save_upstream_calls`) at most every `flush_seconds`, on each worker heartbeat, on
each scrape and when it closes; `/metrics` adds up every process's rows, so any process
scraped gives the installation's figures.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import anyio

from reelforge.db.engine import Database
from reelforge.db.stats import CallKey, save_upstream_calls
from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import (
    CreateRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamPage,
    UpstreamVideo,
    Variant,
)
from reelforge.logs import get_logger
from reelforge.providers.base import ContentStream, ListOrder, Provider

log = get_logger("reelforge.upstream")

T = TypeVar("T")

OK = "ok"


def outcome_code(error: BaseException) -> str:
    """The `code` label of a failed call: upstream's HTTP status when it answered, else what
    went wrong on the way (no connection, no answer in time, an answer out of protocol)."""
    if isinstance(error, ProviderError):
        if error.status is not None:
            return str(error.status)
        if isinstance(error, ProviderTimeout):
            return "timeout"
        if isinstance(error, ProviderProtocolError):
            return "protocol"
        if isinstance(error, ProviderUnavailable):
            return "unreachable"
        return "error"
    return "exception"


class UpstreamTally:
    """This process's upstream calls since it started, and writing them out."""

    def __init__(self, database: Database, process: str, flush_seconds: float = 10.0) -> None:
        self._database = database
        self.process = process
        self._flush_seconds = flush_seconds
        self.counts: Counter[CallKey] = Counter()
        self._written: dict[CallKey, int] = {}
        self._flushed_at = time.monotonic()
        self._lock = anyio.Lock()

    def record(self, provider: str, operation: str, code: str) -> None:
        self.counts[(provider, operation, code)] += 1

    async def flush(self) -> None:
        """Write the totals that changed since the last write; a failure is logged and the
        next flush writes them."""
        async with self._lock:
            changed = {key: n for key, n in self.counts.items() if self._written.get(key) != n}
            self._flushed_at = time.monotonic()
            try:
                await save_upstream_calls(self._database, self.process, changed, utcnow())
            except Exception:
                log.exception("could not write the upstream call counts; the next flush will")
                return
            self._written.update(changed)

    async def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= self._flush_seconds and not self._lock.locked():
            await self.flush()


class CountedProvider:
    """A provider whose every call is counted in a tally; it otherwise passes calls through."""

    def __init__(self, inner: Provider, tally: UpstreamTally) -> None:
        self.inner = inner
        self._tally = tally

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def spec(self) -> ProviderSpec:
        return self.inner.spec

    async def create(self, request: CreateRequest) -> UpstreamVideo:
        return await self._counted("create", self.inner.create(request))

    async def remix(self, video_id: str, prompt: str) -> UpstreamVideo:
        return await self._counted("remix", self.inner.remix(video_id, prompt))

    async def edit(self, video_id: str, prompt: str) -> UpstreamVideo:
        return await self._counted("edit", self.inner.edit(video_id, prompt))

    async def extend(self, video_id: str, prompt: str, seconds: str) -> UpstreamVideo:
        return await self._counted("extend", self.inner.extend(video_id, prompt, seconds))

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        return await self._counted("retrieve", self.inner.retrieve(video_id))

    async def list(
        self, *, after: str | None = None, limit: int | None = None, order: ListOrder = "desc"
    ) -> UpstreamPage:
        return await self._counted("list", self.inner.list(after=after, limit=limit, order=order))

    async def delete(self, video_id: str) -> None:
        await self._counted("delete", self.inner.delete(video_id))

    def stream_content(
        self, video_id: str, variant: Variant = Variant.VIDEO
    ) -> AbstractAsyncContextManager[ContentStream]:
        return self._streamed(video_id, variant)

    async def check(self) -> None:
        await self._counted("check", self.inner.check())

    async def aclose(self) -> None:
        await self.inner.aclose()

    @asynccontextmanager
    async def _streamed(self, video_id: str, variant: Variant) -> AsyncIterator[ContentStream]:
        """A download counts once, by how its opening went (its body's bytes are archive's)."""
        opened = False
        try:
            async with self.inner.stream_content(video_id, variant) as stream:
                opened = True
                await self._done("download", OK)
                yield stream
        except Exception as error:
            if not opened:
                await self._done("download", outcome_code(error))
            raise

    async def _counted(self, operation: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except Exception as error:
            await self._done(operation, outcome_code(error))
            raise
        await self._done(operation, OK)
        return result

    async def _done(self, operation: str, code: str) -> None:
        self._tally.record(self.inner.name, operation, code)
        await self._tally.flush_if_due()
