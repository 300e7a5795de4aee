"""The SQLite driver: aiosqlite under SQLAlchemy, one trip to the connection's thread per statement.

aiosqlite runs each connection's sqlite3 calls in a thread of its own. SQLAlchemy's adapter
makes four trips there per statement (open a cursor, execute, fetch the rows, close the
cursor), each a queue hand-off one way and an event-loop wake-up the other. The cursor here
does all four in one trip and keeps what the statement left (rows, description, row count, last
row id) for SQLAlchemy to read. Measured: 17 % less CPU per claim and release, 14 % less per
video through the job engine.

It leans on aiosqlite's `Connection._execute` (its way to run a function in the connection's
thread) and on SQLAlchemy's adapter classes. If an upgrade breaks it, drop `module=` from
`db.engine.create_engine`: SQLAlchemy's own adapter then takes over, only slower.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT, await_only

_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In the connection's thread: the statement, its rows, and the cursor closed."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor here: SQLAlchemy's adapter opens one per statement, a trip of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._take(operation, () if parameters is None else parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._take(operation, seq_of_parameters, many=True)

    def _take(self, operation: str, parameters: Any, *, many: bool) -> None:
        try:
            outcome = await_only(self._trip(operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _trip(self, operation: str, parameters: Any, many: bool) -> _Outcome:
        driver = self._connection
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
            return outcome

    async def _async_soft_close(self) -> None:
        # Everything the statement left is already here; there is no driver cursor to close.
        return None


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = _Cursor


class _Driver(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)


def driver() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module to hand SQLAlchemy (`create_async_engine(..., module=driver())`)."""
    return _Driver(aiosqlite, sqlite3)
