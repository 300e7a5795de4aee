"""The SQLite driver: what a statement leaves (rows, counts, ids, errors), in one thread trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db.engine import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
async def connection(tmp_path: Any) -> AsyncIterator[AsyncConnection]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT UNIQUE NOT NULL)")
            )
            yield connection
    finally:
        await database.close()


async def test_a_statement_leaves_its_rows_counts_and_ids(connection: AsyncConnection) -> None:
    first = await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
    many = await connection.execute(
        text("INSERT INTO notes (body) VALUES (:body)"), [{"body": "b"}, {"body": "c"}]
    )
    updated = await connection.execute(text("UPDATE notes SET body = body || '!' WHERE id > 1"))
    rows = await connection.execute(text("SELECT id, body FROM notes ORDER BY id"))

    assert first.lastrowid == 1
    assert (many.rowcount, updated.rowcount) == (2, 2)
    assert list(rows.keys()) == ["id", "body"]
    assert rows.all() == [(1, "a"), (2, "b!"), (3, "c!")]


async def test_returning_rows_come_back_from_a_write(connection: AsyncConnection) -> None:
    result = await connection.execute(
        text("INSERT INTO notes (body) VALUES ('x'), ('y') RETURNING id, body")
    )

    assert sorted(result.all()) == [(1, "x"), (2, "y")]


async def test_driver_errors_arrive_as_sqlalchemy_errors(connection: AsyncConnection) -> None:
    await connection.execute(text("INSERT INTO notes (body) VALUES ('same')"))

    with pytest.raises(IntegrityError, match="UNIQUE"):
        await connection.execute(text("INSERT INTO notes (body) VALUES ('same')"))


async def test_a_statement_takes_one_trip_to_the_connections_thread(
    connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's own adapter takes four: open a cursor, execute, fetch, close."""
    trips: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    await connection.execute(text("INSERT INTO notes (body) VALUES ('one') RETURNING id"))
    await connection.execute(text("SELECT body FROM notes"))

    assert len(trips) == 2
