"""Group commit: the writes of many concurrent callers committed in one transaction.

A transaction costs more than the statements in it: a pooled connection, BEGIN, COMMIT, and on
SQLite the one write lock. The job engine's steps each end with a short write, and under
concurrency they queue for that lock anyway; here the queue is the batch. A caller hands over
its write; when no batch is being committed, the first waiting caller commits everything
queued so far in one transaction. No timer: a write that finds nothing in flight goes at once.

A write is a function of the connection that only touches the database, so it can run twice:
when one write in a batch raises (a lost lease, a constraint) or the commit fails, none of the
batch stands, and each write runs again alone, so only the one at fault fails. Every caller
learns the fate of its own write after it is committed or rolled back, as with a transaction
of its own.

A write may also put work off to the end of its batch, where the batch's writes share a
statement instead of sending one each: updates that must change one row each, such as a fenced
write (`Batch.update`), checks that must hold when the batch commits, such as a lease still
being held (`Batch.check`), inserts of rows that no write in the batch reads back, such as a
video's events (`Batch.insert`), and other work done once for all of them, such as the outgoing
webhooks of the batch's changes (`Batch.gather`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping
from typing import Any, TypeVar

import anyio
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from reelforge.db.engine import Database

T = TypeVar("T")
# An update's parameters, and the error that fails the batch unless it changes exactly one row.
_Update = tuple[Mapping[str, Any], Exception]
# Given every key a batch's writes asked it about, the keys that pass (in one query).
Check = Callable[[AsyncConnection, list[Hashable]], Awaitable[Collection[Hashable]]]
# Given every item a batch's writes gave it, does its work (in one or two statements).
Gathered = Callable[[AsyncConnection, list[Any]], Awaitable[None]]


class Batch:
    """A write's share of its batch: the transaction's connection, and work put off to its end.

    Just before the commit, each update runs once for every parameter set the batch's writes
    gave it (where the driver counts the rows of an executemany, SQLite's; one by one where
    not), each check once for every key, each insert once with every row (so an insert is only
    for rows that no write in the batch reads back), and each gathered work once with every
    item.
    """

    __slots__ = ("_checks", "_gathered", "_inserts", "_updates", "connection")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._updates: dict[tuple[Executable, frozenset[str]], list[_Update]] = {}
        self._checks: dict[Check, dict[Hashable, Exception]] = {}
        self._inserts: dict[Executable, list[Mapping[str, Any]]] = {}
        self._gathered: dict[Gathered, list[Any]] = {}

    def update(
        self, statement: Executable, parameters: Mapping[str, Any], error: Exception
    ) -> None:
        """Run `statement` with `parameters` before the batch commits; unless it changes exactly
        one row, fail the batch with `error`."""
        group = (statement, frozenset(parameters))
        self._updates.setdefault(group, []).append((parameters, error))

    def check(self, check: Check, key: Hashable, error: Exception) -> None:
        """Fail the batch with `error` unless `check` passes `key` before the batch commits."""
        self._checks.setdefault(check, {})[key] = error

    def insert(self, statement: Executable, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run `statement` for each of `rows` before the batch commits."""
        self._inserts.setdefault(statement, []).extend(rows)

    def gather(self, work: Gathered, item: object) -> None:
        """Run `work` once before the batch commits, with this and every other item the batch's
        writes gave it."""
        self._gathered.setdefault(work, []).append(item)

    async def flush(self) -> None:
        """Run the updates, checks, inserts and gathered work put off so far, one call each."""
        updates, self._updates = self._updates, {}
        for (statement, _names), parameters in updates.items():
            await self._update(statement, parameters)
        checks, self._checks = self._checks, {}
        for check, errors in checks.items():
            passed = await check(self.connection, list(errors))
            for key, error in errors.items():
                if key not in passed:
                    raise error
        inserts, self._inserts = self._inserts, {}
        for statement, rows in inserts.items():
            if rows:
                await self.connection.execute(statement, rows)
        gathered, self._gathered = self._gathered, {}
        for work, items in gathered.items():
            await work(self.connection, items)

    async def _update(self, statement: Executable, updates: list[_Update]) -> None:
        if self.connection.dialect.supports_sane_multi_rowcount:
            result = await self.connection.execute(statement, [row for row, _ in updates])
            if result.rowcount != len(updates):
                # Which one missed is unknown; the batch fails, and each write runs again alone.
                raise updates[0][1]
            return
        for row, error in updates:
            if (await self.connection.execute(statement, row)).rowcount != 1:
                raise error


Write = Callable[[Batch], Awaitable[T]]


class _Unit:
    __slots__ = ("done", "error", "result", "write")

    def __init__(self, write: Write[Any]) -> None:
        self.write = write
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True


class GroupCommit:
    """Commits the writes handed to `run` in shared transactions (one batch at a time)."""

    def __init__(self, database: Database, *, batch_seconds: float = 10.0) -> None:
        self._database = database
        self._batch_seconds = batch_seconds
        self._queue: list[_Unit] = []
        self._committing = False
        self._committed = anyio.Event()

    async def run(self, write: Write[T]) -> T:
        """Run `write(batch)` in a transaction, maybe shared; return what it returned.

        Cancelled while still queued, the write is dropped. Once its batch has started, the
        batch finishes and the cancellation arrives after it: the batch holds other callers'
        writes, and a commit cut short leaves their outcome unknown. A batch that takes longer
        than `batch_seconds` (a database that hangs) is abandoned, so a shutdown still ends.
        """
        unit = _Unit(write)
        self._queue.append(unit)
        try:
            while not unit.done:
                if self._committing:
                    await self._committed.wait()
                else:
                    await self._commit_queued()
        except BaseException:
            if unit in self._queue:
                self._queue.remove(unit)
            raise
        if unit.error is not None:
            raise unit.error
        result: T = unit.result
        return result

    async def _commit_queued(self) -> None:
        batch, self._queue = self._queue, []
        self._committing = True
        try:
            deadline = anyio.current_time() + self._batch_seconds
            with anyio.CancelScope(shield=True, deadline=deadline):
                if not await self._together(batch):
                    for unit in batch:
                        await self._alone(unit)
        finally:
            for unit in batch:
                if not unit.done:
                    unit.settle(error=TimeoutError(f"no commit within {self._batch_seconds} s"))
            self._committing = False
            committed, self._committed = self._committed, anyio.Event()
            committed.set()

    async def _together(self, batch: list[_Unit]) -> bool:
        """The batch in one transaction; False (and nothing written) when any of it failed."""
        if len(batch) == 1:
            return False
        results = []
        try:
            async with self._database.transaction() as connection:
                shared = Batch(connection)
                for unit in batch:
                    results.append(await unit.write(shared))
                await shared.flush()
        except Exception:
            return False
        for unit, result in zip(batch, results, strict=True):
            unit.settle(result)
        return True

    async def _alone(self, unit: _Unit) -> None:
        try:
            async with self._database.transaction() as connection:
                alone = Batch(connection)
                result = await unit.write(alone)
                await alone.flush()
        except Exception as error:
            unit.settle(error=error)
        else:
            unit.settle(result)
