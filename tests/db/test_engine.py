"""The database handle: SQLite pragmas and write queueing, plain reads, aware datetimes on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from reelforge.db.engine import SQLITE_BUSY_TIMEOUT_MS, Database
from reelforge.db.models import ApiKey, User, WebhookReceipt

pytestmark = pytest.mark.anyio


async def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        async with database.engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        await database.close()

    assert (journal, foreign_keys, busy) == ("wal", 1, SQLITE_BUSY_TIMEOUT_MS)


async def test_a_connection_given_back_is_reused(database_url: str) -> None:
    """Returning a connection raises nothing (an old-style pool listener warned on every
    return; under warnings-as-errors the pool then threw the connection away and opened a new
    one for the next caller)."""
    database = Database(database_url)
    try:
        opened = []
        for _ in range(3):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                opened.append((await connection.get_raw_connection()).driver_connection)
    finally:
        await database.close()

    assert opened[0] is opened[1] is opened[2]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_plain_read_on_postgresql_opens_no_transaction(database_url: str) -> None:
    """No BEGIN before the queries, nothing to roll back after: each statement is a
    transaction of its own, where a session's statements share the one it began."""
    database = Database(database_url)
    xid = text("SELECT pg_current_xact_id()::text")
    try:
        async with database.reading() as connection:
            plain = {(await connection.execute(xid)).scalar() for _ in range(2)}
        async with database.session() as session:
            in_session = {(await session.execute(xid)).scalar() for _ in range(2)}
    finally:
        await database.close()

    assert (len(plain), len(in_session)) == (2, 1)


async def test_a_plain_read_sees_what_was_just_committed(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        async with database.reading() as connection:
            before = (await connection.execute(select(User.id))).all()
        async with database.session() as session, session.begin():
            session.add(User(id="user_fresh", email="fresh@example.org", password_hash="x"))
        async with database.reading() as connection:
            after = (await connection.execute(select(User.id))).scalars().all()
    finally:
        await database.close()

    assert (before, after) == ([], ["user_fresh"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_writers_in_one_process_queue_rather_than_time_out(
    migrated_url: str,
) -> None:
    # Twenty transactions that each hold the write lock for 50 ms, all at once, with SQLite's
    # own wait cut to 200 ms: left to SQLite's busy handler most would fail "database is
    # locked"; queued in the process, each waits its turn and all commit.
    database = Database(migrated_url, pool_size=20, max_overflow=0)
    failures: list[Exception] = []

    async def writer(number: int) -> None:
        try:
            async with database.session() as session, session.begin():
                await session.execute(text("PRAGMA busy_timeout=200"))
                session.add(
                    WebhookReceipt(provider="p", webhook_id=f"msg_{number}", event_type="t")
                )
                await session.flush()
                await anyio.sleep(0.05)
        except Exception as error:
            failures.append(error)

    try:
        async with anyio.create_task_group() as group:
            for number in range(20):
                group.start_soon(writer, number)
        async with database.session() as session:
            rows = (await session.scalars(select(WebhookReceipt.webhook_id))).all()
    finally:
        await database.close()

    assert failures == []
    assert len(rows) == 20


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sqlite_connection_given_back_mid_transaction_is_rolled_back(
    migrated_url: str,
) -> None:
    """The pool rolls back only a connection with a transaction open (each rollback is a trip
    to the driver's thread); one left open behind SQLAlchemy's back is still rolled back."""
    database = Database(migrated_url, pool_size=1, max_overflow=0)
    try:
        async with database.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.execute(
                "INSERT INTO webhook_receipts (provider, webhook_id, event_type, received_at)"
                " VALUES ('p', 'msg_left_open', 't', '2026-11-26 00:00:00.000000')"
            )
            left_open = driver.in_transaction
        async with database.engine.connect() as connection:
            again = (await connection.get_raw_connection()).driver_connection
            rows = (await connection.execute(select(WebhookReceipt.webhook_id))).all()
    finally:
        await database.close()

    assert (left_open, again is driver, rows) == (True, True, [])


async def test_datetimes_come_back_aware_and_in_utc(migrated_url: str) -> None:
    database = Database(migrated_url)
    created = datetime(2026, 9, 24, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    try:
        async with database.session() as session:
            session.add(User(id="user_1", email="a@example.com", created_at=created))
            await session.commit()
        async with database.session() as session:
            user = (await session.execute(select(User))).scalar_one()
    finally:
        await database.close()

    assert user.created_at == created
    assert user.created_at.tzinfo == UTC
    assert user.created_at.hour == 10


async def test_naive_datetimes_are_refused(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        async with database.session() as session:
            session.add(User(id="user_1", email="a@example.com", created_at=datetime(2026, 1, 1)))
            with pytest.raises(Exception, match="naive datetime"):
                await session.commit()
    finally:
        await database.close()


async def test_foreign_keys_are_enforced(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        async with database.session() as session:
            session.add(ApiKey(id="key_1", user_id="user_missing", prefix="rf_x", key_hash="h"))
            with pytest.raises(IntegrityError):
                await session.commit()
    finally:
        await database.close()
