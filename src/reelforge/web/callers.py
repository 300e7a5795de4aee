"""Who a realtime connection belongs to: its credential, checked now and again when it changes."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from reelforge.api.auth import SESSION_COOKIE, bearer_account, session_account
from reelforge.domain.accounts import Account
from reelforge.runtime import Runtime
from reelforge.web.live import Authenticate


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def cookies_of(header: str | None) -> Mapping[str, str]:
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def authenticator(
    runtime: Runtime, *, token: str | None, session: str | None
) -> Authenticate | None:
    """How to check this credential (a bearer token wins over a session cookie), or None when
    the connection brought none. Checked at connect and again whenever the bus says the
    account or one of its keys changed."""
    if token is not None:

        async def by_token() -> Account | None:
            return await bearer_account(runtime, token)

        return by_token
    if session is not None:

        async def by_session() -> Account | None:
            return await session_account(runtime, session)

        return by_session
    return None


def session_of(cookies: Mapping[str, str]) -> str | None:
    return cookies.get(SESSION_COOKIE)
