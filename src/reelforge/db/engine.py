"""The database handle: an async engine and session factory for SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _roll_back_if_open(dbapi_connection: Any, _record: Any, state: Any) -> None:
    # The pool's own reset rolls back every connection it gets back, and on aiosqlite each
    # rollback is a trip to the connection's thread; a committed write or a plain read leaves
    # no transaction open (the driver begins one only before a write), so ask first.
    if state.asyncio_safe and dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


class _WriteGate:
    """One SQLite writer at a time in this process, queued on an asyncio lock.

    SQLite admits one writer per database; a second connection that tries to write waits in
    SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and gives up after the
    busy timeout. Under the engine's concurrency that wasted most of a step's time and, now and
    then, failed a write with "database is locked". Here a connection takes the gate when its
    transaction first writes (exactly when SQLite would take its write lock) and gives it back
    when the transaction ends, so writers in one process queue and wake the moment it is free.
    Other processes still meet SQLite's own lock and its busy timeout.
    """

    _HELD = "reelforge_write_gate"

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    def install(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_execute)
        event.listen(sync, "commit", self._on_end)
        event.listen(sync, "rollback", self._on_end)
        event.listen(sync.pool, "reset", self._on_reset)
        for name in ("checkin", "invalidate", "close"):
            event.listen(sync.pool, name, self._on_pool_end)

    def _before_execute(
        self,
        connection: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        if connection.info.get(self._HELD) or not _writes(statement):
            return
        await_only(self._lock.acquire())
        connection.info[self._HELD] = True

    def _on_end(self, connection: Connection) -> None:
        self._release(connection.info)

    def _on_pool_end(self, _dbapi: Any, record: Any, *_rest: Any) -> None:
        if record is not None:
            self._release(record.info)

    # Named as SQLAlchemy 2 names them: a listener it can't match to the 2.0 signature is
    # called through a shim that warns on every connection returned to the pool.
    def _on_reset(self, dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
        self._on_pool_end(dbapi_connection, connection_record)

    def _release(self, info: dict[Any, Any]) -> None:
        if info.pop(self._HELD, False):
            self._lock.release()


_WRITES = ("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE", "REPLACE")


def _writes(statement: str) -> bool:
    return statement.lstrip()[:16].upper().startswith(_WRITES)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`; SQLite gets its directory created and its pragmas set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_reset_on_return=None, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # Before the write gate's listener: a connection is rolled back before the gate lets
        # the next writer in.
        event.listen(engine.sync_engine.pool, "reset", _roll_back_if_open)
        _WriteGate().install(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


class Database:
    """Owns the engine; hands out sessions, and connections for plain reads."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # On PostgreSQL a session's read costs six round trips: the pool's liveness ping
        # (which the driver wraps in BEGIN and ROLLBACK), BEGIN, the query, ROLLBACK. A pool
        # of autocommit connections pings in one and needs no transaction: two. SQLite's
        # driver opens no transaction for a read, so there one pool serves both.
        self._reader = self.engine
        if self.dialect == "postgresql":
            self._reader = create_engine(url, isolation_level="AUTOCOMMIT", **engine_kwargs)
        self._probe: sqlite3.Connection | None = None

    def commit_probe(self) -> Callable[[], int | None] | None:
        """On SQLite in a file: a function answering a number that changes whenever any
        connection of any process has committed since it last answered (`PRAGMA data_version`
        on a connection of its own, which never writes), or None when it can't say. None for
        other databases.

        It runs on the caller's thread, without the driver's thread hop: the pragma reads the
        WAL index in shared memory and takes about a microsecond, no lock and no wait."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        # Read-only, and opened on first use: the file may not exist before it is migrated.
        address = f"file:{parsed.database}?mode=ro"

        def version() -> int | None:
            try:
                if self._probe is None:
                    self._probe = sqlite3.connect(
                        address, uri=True, isolation_level=None, check_same_thread=False, timeout=0
                    )
                row = self._probe.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
            return int(row[0])

        return version

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that need no transaction: each statement sees the latest
        committed data on its own. Writes belong in a session."""
        async with self._reader.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends and rolled back if it
        raises: the unit of work of every change of a video (db.group) runs on one."""
        async with self.engine.begin() as connection:
            yield connection

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine this handle opened: the one for sessions, then the readers' if apart."""
        return (self.engine,) if self._reader is self.engine else (self.engine, self._reader)

    async def close(self) -> None:
        for engine in self.engines:
            await engine.dispose()
        if self._probe is not None:
            self._probe.close()
            self._probe = None
