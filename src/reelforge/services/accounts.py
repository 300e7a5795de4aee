"""Account use cases: create users, check passwords, disable, and the first admin."""

from __future__ import annotations

import secrets

from pwdlib import PasswordHash
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reelforge.bus import Bus, Notice, Topic
from reelforge.db import accounts as queries
from reelforge.db.engine import Database
from reelforge.db.models import Quota, User
from reelforge.domain.accounts import (
    Account,
    Role,
    check_password,
    normalize_email,
)
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.ids import new_id
from reelforge.domain.quotas import QuotaPolicy
from reelforge.services.read_cache import ReadCache

UNLIMITED = QuotaPolicy(max_videos=None, period_days=30, monthly_budget=None)


class Accounts:
    """Users and their passwords (argon2 through pwdlib)."""

    def __init__(
        self,
        database: Database,
        hasher: PasswordHash | None = None,
        *,
        quota: QuotaPolicy = UNLIMITED,
        cache: ReadCache | None = None,
        bus: Bus | None = None,
    ) -> None:
        self._database = database
        self._quota = quota
        self._cache = cache or ReadCache()
        self._bus = bus
        self._hasher = hasher or PasswordHash.recommended()
        # Verified against when the email is unknown, so both paths cost one argon2 check.
        self._decoy_hash = self._hasher.hash(secrets.token_hex(16))

    async def create(
        self, email: str, password: str, *, role: Role = Role.USER, display_name: str = ""
    ) -> Account:
        user = User(
            id=new_id("user"),
            email=normalize_email(email),
            password_hash=self._hasher.hash(check_password(password)),
            role=role.value,
            display_name=display_name.strip()[:200],
        )
        async with self._database.session() as session, session.begin():
            session.add(user)
            try:
                await session.flush()
            except IntegrityError:
                raise ConflictError(f"{user.email} already has an account", field="email") from None
            session.add(
                Quota(
                    user_id=user.id,
                    max_videos_per_period=self._quota.max_videos,
                    period_days=self._quota.period_days,
                    monthly_budget=self._quota.monthly_budget,
                )
            )
        return queries.to_account(user)

    async def authenticate(self, email: str, password: str) -> Account | None:
        """The active account with this email and password, or None (no hint which was wrong)."""
        async with self._database.session() as session, session.begin():
            user = await queries.user_by_email(session, email.strip().lower())
            if user is None or user.password_hash is None:
                self._hasher.verify(password, self._decoy_hash)
                return None
            valid, rehashed = self._hasher.verify_and_update(password, user.password_hash)
            if not valid or user.disabled:
                return None
            if rehashed is not None:
                user.password_hash = rehashed
            return queries.to_account(user)

    async def get(self, user_id: str) -> Account | None:
        cache = self._cache
        generation = await cache.current()
        if generation is not None and (known := cache.accounts.get(user_id)) is not None:
            return known
        async with self._database.reading() as connection:
            account = await queries.account_by_id(connection, user_id)
        if account is not None:
            cache.keep(generation, cache.accounts, user_id, account)
        return account

    async def find(self, email: str) -> Account:
        async with self._database.session() as session:
            return queries.to_account(await self._by_email(session, email))

    async def list(self) -> list[Account]:
        async with self._database.session() as session:
            return [queries.to_account(user) for user in await queries.all_users(session)]

    async def set_password(self, email: str, password: str) -> None:
        hashed = self._hasher.hash(check_password(password))
        async with self._database.session() as session, session.begin():
            user = await self._by_email(session, email)
            user.password_hash = hashed
        await self._changed(user.id, "password")

    async def set_role(self, email: str, role: Role) -> Account:
        async with self._database.session() as session, session.begin():
            user = await self._by_email(session, email)
            user.role = role.value
            changed = queries.to_account(user)
        await self._changed(changed.id, "role")
        return changed

    async def change_password(self, account: Account, current: str, new: str) -> None:
        """A user's own change: the current password must be right, the new one valid."""
        try:
            hashed = self._hasher.hash(check_password(new))
        except InputError as exc:
            raise InputError("new_password", exc.message) from None
        async with self._database.session() as session, session.begin():
            user = await session.get(User, account.id)
            if user is None or user.password_hash is None:
                raise NotFoundError("user", account.id)
            if not self._hasher.verify(current, user.password_hash):
                raise InputError("current_password", "does not match your current password")
            user.password_hash = hashed
        await self._changed(account.id, "password")

    async def set_disabled(self, email: str, disabled: bool) -> Account:
        async with self._database.session() as session, session.begin():
            user = await self._by_email(session, email)
            user.disabled = disabled
            changed = queries.to_account(user)
        await self._changed(changed.id, "disabled")
        return changed

    async def _changed(self, user_id: str, what: str) -> None:
        # After the commit: every process drops the account before its next request, and
        # whoever holds its live connections checks them again.
        if self._bus is not None:
            await self._bus.publish(Notice(Topic.ACCOUNT, user_id, user_id, frozenset({what})))

    async def ensure_first_admin(self, email: str, password: str | None) -> str | None:
        """Create an admin when there is no user at all.

        Returns the generated one-time password when one had to be made, else None.
        """
        async with self._database.session() as session:
            if await queries.count_users(session):
                return None
        generated = None if password else secrets.token_urlsafe(15)
        try:
            await self.create(email, password or generated or "", role=Role.ADMIN)
        except ConflictError:
            return None  # another process won the race; its admin stands
        return generated

    @staticmethod
    async def _by_email(session: AsyncSession, email: str) -> User:
        user = await queries.user_by_email(session, normalize_email(email))
        if user is None:
            raise NotFoundError("user", email)
        return user
