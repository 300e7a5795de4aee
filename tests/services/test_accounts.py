"""Accounts, API keys and tokens against a real database of each dialect."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import text

from reelforge.db.engine import Database
from reelforge.domain.accounts import Role
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.services.accounts import Accounts
from reelforge.services.keys import ApiKeys
from reelforge.services.sessions import Sessions
from reelforge.services.tokens import ALGORITHM, API_AUDIENCE, ISSUER, SESSION_AUDIENCE, Tokens
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.anyio


@pytest.fixture
def keys(database: Database) -> ApiKeys:
    return ApiKeys(database)


async def test_create_then_authenticate(accounts: Accounts) -> None:
    created = await accounts.create(" Ada@Example.org ", PASSWORD, display_name="Ada")

    assert created.email == "ada@example.org"
    assert created.role is Role.USER
    assert await accounts.authenticate("ada@example.org", PASSWORD) == created
    assert await accounts.authenticate("ADA@example.org", PASSWORD) == created
    assert await accounts.authenticate("ada@example.org", "wrong password") is None
    assert await accounts.authenticate("nobody@example.org", PASSWORD) is None


async def test_duplicate_email_is_a_conflict_naming_the_field(accounts: Accounts) -> None:
    await accounts.create("ada@example.org", PASSWORD)

    with pytest.raises(ConflictError) as caught:
        await accounts.create("ADA@example.org", PASSWORD)

    assert caught.value.field == "email"
    assert len(await accounts.list()) == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("not-an-email", PASSWORD, "email"), ("a@b.c", "short", "password")],
)
async def test_bad_input_names_the_field_and_creates_nothing(
    accounts: Accounts, email: str, password: str, field: str
) -> None:
    with pytest.raises(InputError) as caught:
        await accounts.create(email, password)

    assert caught.value.field == field
    assert await accounts.list() == []


async def test_disabled_users_cannot_log_in(accounts: Accounts) -> None:
    await accounts.create("ada@example.org", PASSWORD)

    await accounts.set_disabled("ada@example.org", True)
    assert await accounts.authenticate("ada@example.org", PASSWORD) is None

    await accounts.set_disabled("ada@example.org", False)
    assert await accounts.authenticate("ada@example.org", PASSWORD) is not None


async def test_set_password_replaces_the_old_one(accounts: Accounts) -> None:
    await accounts.create("ada@example.org", PASSWORD)

    await accounts.set_password("ada@example.org", "a brand new secret")

    assert await accounts.authenticate("ada@example.org", PASSWORD) is None
    assert await accounts.authenticate("ada@example.org", "a brand new secret") is not None
    with pytest.raises(NotFoundError):
        await accounts.set_password("nobody@example.org", "a brand new secret")


async def test_first_admin_is_made_once(accounts: Accounts) -> None:
    generated = await accounts.ensure_first_admin("admin@localhost", None)

    assert generated is not None
    admin = await accounts.authenticate("admin@localhost", generated)
    assert admin is not None
    assert admin.is_admin
    assert await accounts.ensure_first_admin("admin@localhost", None) is None
    assert len(await accounts.list()) == 1


async def test_first_admin_takes_a_configured_password(accounts: Accounts) -> None:
    assert await accounts.ensure_first_admin("root@example.org", "configured secret") is None
    assert await accounts.authenticate("root@example.org", "configured secret") is not None


async def test_api_key_is_shown_once_and_stored_as_prefix_and_hash(
    accounts: Accounts, keys: ApiKeys, database: Database
) -> None:
    ada = await accounts.create("ada@example.org", PASSWORD)

    info, token = await keys.create(ada, "laptop")

    assert token.startswith("rf_")
    assert token.removeprefix("rf_").startswith(info.prefix)
    assert await keys.authenticate(token) == ada
    listed = await keys.list(ada)
    assert [k.id for k in listed] == [info.id]
    assert listed[0].last_used_at is not None
    async with database.engine.connect() as connection:
        stored = (await connection.execute(text("SELECT key_hash FROM api_keys"))).scalar_one()
    assert token not in stored


async def test_forged_revoked_and_disabled_keys_are_refused(
    accounts: Accounts, keys: ApiKeys
) -> None:
    ada = await accounts.create("ada@example.org", PASSWORD)
    info, token = await keys.create(ada)
    _, other_token = await keys.create(ada)

    assert await keys.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert await keys.authenticate("rf_short") is None
    assert await keys.authenticate("sk-not-ours") is None

    await keys.revoke(ada, info.id)
    assert await keys.authenticate(token) is None
    assert await keys.authenticate(other_token) == ada

    await accounts.set_disabled(ada.email, True)
    assert await keys.authenticate(other_token) is None


async def test_nobody_revokes_another_users_key(accounts: Accounts, keys: ApiKeys) -> None:
    ada = await accounts.create("ada@example.org", PASSWORD)
    bob = await accounts.create("bob@example.org", PASSWORD)
    info, token = await keys.create(ada)

    with pytest.raises(NotFoundError):
        await keys.revoke(bob, info.id)

    assert await keys.authenticate(token) == ada


async def test_tokens_check_signature_expiry_and_audience(accounts: Accounts) -> None:
    ada = await accounts.create("ada@example.org", PASSWORD)
    tokens = Tokens("s" * 40, timedelta(minutes=5))
    token = tokens.issue(ada)

    assert tokens.subject(token) == ada.id
    assert tokens.subject(token, SESSION_AUDIENCE) is None
    assert Tokens("t" * 40, timedelta(minutes=5)).subject(token) is None
    assert tokens.subject(token + "x") is None
    expired = Tokens("s" * 40, timedelta(seconds=-1)).issue(ada)
    assert tokens.subject(expired) is None
    unsigned = jwt.encode({"sub": ada.id, "aud": API_AUDIENCE}, key=None, algorithm="none")
    assert tokens.subject(unsigned) is None


async def test_sessions_end_one_token_for_good(database: Database, accounts: Accounts) -> None:
    ada = await accounts.create("ada@example.org", PASSWORD)
    tokens = Tokens("s" * 40, timedelta(minutes=5))
    sessions = Sessions(database, tokens)
    ended, kept = sessions.start(ada), sessions.start(ada)
    assert await sessions.user_id(ended) == ada.id

    await sessions.end(ended)
    await sessions.end(ended)  # a logout sent twice

    assert await sessions.user_id(ended) is None
    assert await sessions.user_id(kept) == ada.id
    # An API token is not a session, and a signed session without an id can't be ended.
    assert await sessions.user_id(tokens.issue(ada)) is None
    claims = {"sub": ada.id, "aud": SESSION_AUDIENCE, "iss": ISSUER}
    now = int(time.time())
    no_id = jwt.encode(claims | {"iat": now, "exp": now + 60}, "s" * 40, algorithm=ALGORITHM)
    assert await sessions.user_id(no_id) is None
