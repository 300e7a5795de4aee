"""Migrations: up and down on SQLite and PostgreSQL, leaving the schema the models describe."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from reelforge.db import migrate
from reelforge.db.engine import create_engine
from reelforge.db.models import Base

pytestmark = pytest.mark.anyio

TABLES = {
    "users",
    "api_keys",
    "videos",
    "video_events",
    "ledger",
    "quotas",
    "webhook_receipts",
    "webhook_endpoints",
    "webhook_deliveries",
    "worker_heartbeats",
    "ended_sessions",
    "upstream_calls",
}


def _schema(connection: Connection) -> dict[str, Any]:
    """Tables, columns, indexes and unique constraints, by name, as the database reports them."""
    inspector = inspect(connection)
    schema: dict[str, Any] = {}
    for table in inspector.get_table_names():
        schema[table] = {
            "columns": sorted(c["name"] for c in inspector.get_columns(table)),
            # PostgreSQL also lists the index behind each unique constraint; SQLite doesn't.
            "indexes": sorted(
                i["name"]
                for i in inspector.get_indexes(table)
                if i["name"] and not i.get("duplicates_constraint")
            ),
            "unique": sorted(
                u["name"] for u in inspector.get_unique_constraints(table) if u["name"]
            ),
        }
    return schema


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _inspect(url: str) -> tuple[dict[str, Any], list[Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_schema), await connection.run_sync(_differences)
    finally:
        await engine.dispose()


async def test_upgrade_creates_the_schema_of_the_models(database_url: str) -> None:
    await migrate.upgrade(database_url)

    schema, differences = await _inspect(database_url)

    assert set(schema) == TABLES | {"alembic_version"}
    assert differences == []
    assert await migrate.current_revision(database_url) == migrate.head_revision()


async def test_downgrade_removes_everything_and_upgrade_restores_it(database_url: str) -> None:
    await migrate.upgrade(database_url)
    before, _ = await _inspect(database_url)

    await migrate.downgrade(database_url, "base")
    emptied, _ = await _inspect(database_url)
    await migrate.upgrade(database_url)
    after, _ = await _inspect(database_url)

    assert set(emptied) == {"alembic_version"}
    assert await migrate.current_revision(database_url) == migrate.head_revision()
    assert after == before


async def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    await migrate.upgrade(database_url)
    first, _ = await _inspect(database_url)

    await migrate.upgrade(database_url)

    assert (await _inspect(database_url))[0] == first


@pytest.mark.postgres
async def test_both_dialects_get_the_same_tables_columns_and_indexes(
    sqlite_url: str, postgres_url: str
) -> None:
    await migrate.upgrade(sqlite_url)
    await migrate.upgrade(postgres_url)

    on_sqlite, _ = await _inspect(sqlite_url)
    on_postgres, _ = await _inspect(postgres_url)

    assert on_sqlite == on_postgres
