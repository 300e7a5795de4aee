"""API keys: made once and shown once, stored as a lookup prefix and a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import update

from reelforge.bus import Bus, Notice, Topic
from reelforge.db import accounts as queries
from reelforge.db.engine import Database
from reelforge.db.models import ApiKey
from reelforge.domain.accounts import Account, KeyInfo
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import InputError, NotFoundError
from reelforge.domain.ids import new_id
from reelforge.services.read_cache import KeyEntry, ReadCache

KEY_MARK = "rf_"
_PREFIX_HEX = 12
# Writing last_used_at on every request would turn each read into a write; a minute is plenty.
_TOUCH_EVERY = timedelta(minutes=1)


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_MARK) and len(token) > len(KEY_MARK) + _PREFIX_HEX


def key_prefix(token: str) -> str:
    return token[len(KEY_MARK) : len(KEY_MARK) + _PREFIX_HEX]


def _digest(token: str) -> str:
    # The secret is 256 random bits, so a fast hash is safe here and keeps every request cheap;
    # argon2 is for low-entropy human passwords.
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    def __init__(
        self, database: Database, bus: Bus | None = None, *, cache: ReadCache | None = None
    ) -> None:
        self._database = database
        self._cache = cache or ReadCache()
        # Told of a revoke, every process drops the key before its next request
        # (services/read_cache.py) and live-update connections opened with it close.
        self._bus = bus

    async def create(self, account: Account, name: str = "") -> tuple[KeyInfo, str]:
        """A new key for `account`: its record, and the token itself, which is never stored."""
        if len(name) > 200:
            raise InputError("name", "must be at most 200 characters")
        prefix = secrets.token_hex(_PREFIX_HEX // 2)
        token = f"{KEY_MARK}{prefix}{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=new_id("key"),
            user_id=account.id,
            name=name.strip(),
            prefix=prefix,
            key_hash=_digest(token),
            scopes=[],
        )
        async with self._database.session() as session, session.begin():
            session.add(key)
        return queries.to_key_info(key), token

    async def list(self, account: Account) -> list[KeyInfo]:
        async with self._database.session() as session:
            return [queries.to_key_info(key) for key in await queries.keys_of(session, account.id)]

    async def revoke(self, account: Account, key_id: str) -> KeyInfo:
        """Revoke one of `account`'s keys (idempotent); another user's key is not found."""
        return await self._revoke(key_id, owner_id=account.id)

    async def revoke_any(self, key_id: str) -> KeyInfo:
        """Revoke anyone's key (an admin's act; idempotent)."""
        return await self._revoke(key_id, owner_id=None)

    async def _revoke(self, key_id: str, *, owner_id: str | None) -> KeyInfo:
        async with self._database.session() as session, session.begin():
            key = await session.get(ApiKey, key_id)
            if key is None or owner_id not in (None, key.user_id):
                raise NotFoundError("api key", key_id)
            key.revoked_at = key.revoked_at or utcnow()
            info = queries.to_key_info(key)
        if self._bus is not None:
            await self._bus.publish(Notice(Topic.KEY, key_id, info.user_id, frozenset({"revoked"})))
        return info

    async def authenticate(self, token: str) -> Account | None:
        """The active account a live key belongs to, or None."""
        if not looks_like_key(token):
            return None
        prefix, cache = key_prefix(token), self._cache
        generation = await cache.current()
        entry = cache.keys.get(prefix) if generation is not None else None
        account = cache.accounts.get(entry.user_id) if entry is not None else None
        if entry is None or account is None:
            async with self._database.reading() as connection:
                row = await queries.key_with_owner(connection, prefix)
            if row is None:
                return None
            entry = KeyEntry(
                row.key_id, row.id, row.key_hash, row.revoked_at is not None, row.last_used_at
            )
            account = queries.to_account(row)
            cache.keep_key(generation, prefix, entry)
            cache.keep(generation, cache.accounts, account.id, account)
        if entry.revoked or account.disabled:
            return None
        if not hmac.compare_digest(entry.key_hash, _digest(token)):
            return None
        now = utcnow()
        if entry.last_used_at is None or now - entry.last_used_at > _TOUCH_EVERY:
            async with self._database.session() as session, session.begin():
                await session.execute(
                    update(ApiKey).where(ApiKey.id == entry.key_id).values(last_used_at=now)
                )
            entry.last_used_at = now
        return account
