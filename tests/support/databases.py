"""Throwaway PostgreSQL databases for tests, made and dropped through the server's admin URL."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy import make_url


def _dsn(admin_url: str) -> str:
    return make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin_url: str) -> str:
    """A new, empty database on the admin URL's server; its SQLAlchemy URL."""
    name = f"reelforge_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, url: str) -> None:
    """Drop the database `url` names, closing any connection still open to it."""
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await connection.close()
