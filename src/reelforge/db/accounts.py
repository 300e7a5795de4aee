"""Queries for users and API keys, returning the domain's read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from reelforge.db.models import ApiKey, User
from reelforge.domain.accounts import Account, KeyInfo, Role


def to_account(user: User | Row[Any]) -> Account:
    """From an ORM object or a Core row of `users` (the per-request reads skip the ORM)."""
    return Account(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role),
        disabled=user.disabled,
        created_at=user.created_at,
    )


def to_key_info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.scalars(select(User).where(User.email == email))
    return result.one_or_none()


_ACCOUNT = select(
    User.id, User.email, User.display_name, User.role, User.disabled, User.created_at
).where(User.id == bindparam("user_id"))


async def account_by_id(connection: AsyncConnection, user_id: str) -> Account | None:
    """The account, read as a plain row (every request with a token or session cookie)."""
    row = cast(
        "Row[Any] | None", (await connection.execute(_ACCOUNT, {"user_id": user_id})).first()
    )
    return to_account(row) if row is not None else None


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def all_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.created_at, User.email))).all()


async def key_by_prefix(session: AsyncSession, prefix: str) -> ApiKey | None:
    result = await session.scalars(select(ApiKey).where(ApiKey.prefix == prefix))
    return result.one_or_none()


async def keys_of(session: AsyncSession, user_id: str) -> Sequence[ApiKey]:
    query = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
    return (await session.scalars(query)).all()


# Built once: every request made with an API key runs it, and building the statement and its
# cache key cost more CPU than running it.
_KEY_WITH_OWNER = (
    select(
        ApiKey.id.label("key_id"),
        ApiKey.key_hash,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        User.id,
        User.email,
        User.display_name,
        User.role,
        User.disabled,
        User.created_at,
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)


async def key_with_owner(connection: AsyncConnection, prefix: str) -> Row[Any] | None:
    """The key with this prefix and its owner, in one Core query (the hot path of every
    request made with an API key)."""
    result = await connection.execute(_KEY_WITH_OWNER, {"prefix": prefix})
    return cast("Row[Any] | None", result.first())
