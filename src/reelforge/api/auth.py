"""Who is calling: API keys and JWTs as Bearer, or a browser session cookie guarded by CSRF."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response

from reelforge.api.errors import ApiError, ProtocolForm
from reelforge.domain.accounts import Account
from reelforge.runtime import Runtime
from reelforge.services.keys import key_prefix, looks_like_key

SESSION_COOKIE = "reelforge_session"
CSRF_COOKIE = "reelforge_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
INVALID_KEY_CODE = "invalid_api_key"


async def optional_account(request: Request, runtime: Runtime) -> Account | None:
    """The caller's active account, None when anonymous; a bad credential is a 401.

    Checked once per request: `api/edge.py` authenticates before the body is read, and the
    route's own dependency then takes the answer from `request.state`.
    """
    if hasattr(request.state, "account"):
        known: Account | None = request.state.account
        return known
    account = await _find_account(request, runtime)
    request.state.account = account
    return account


async def _find_account(request: Request, runtime: Runtime) -> Account | None:
    header = request.headers.get("authorization")
    if header is not None:
        return await _bearer_account(request, runtime, header)
    session = request.cookies.get(SESSION_COOKIE)
    if session is None:
        return None
    account = await session_account(runtime, session)
    if account is None:
        return None
    if request.method not in _SAFE_METHODS:
        await _check_csrf(request)
    return account


async def current_account(request: Request) -> Account:
    # One dependency, not a chain: FastAPI's cost is per dependency solved, on every request.
    account = await optional_account(request, request.app.state.runtime)
    if account is None:
        raise unauthorized("Authentication required: send an API key or token as Bearer")
    return account


async def admin_account(account: Annotated[Account, Depends(current_account)]) -> Account:
    if not account.is_admin:
        raise ApiError(403, "forbidden", "This needs the admin role")
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]
AdminAccount = Annotated[Account, Depends(admin_account)]


def start_session(response: Response, token: str, *, secure: bool) -> str:
    """Set the session and CSRF cookies; returns the CSRF token for pages to embed."""
    csrf = secrets.token_urlsafe(32)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/"
    )
    # Readable by the page's own script, which echoes it in a header: a cross-site form can
    # neither read it nor set the header, which is the whole defence.
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict", secure=secure)
    return csrf


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


async def _bearer_account(request: Request, runtime: Runtime, header: str) -> Account:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization must be 'Bearer <API key or token>'")
    token = token.strip()
    account = await bearer_account(runtime, token)
    if looks_like_key(token):
        # Rate limits count per key as well as per user.
        request.state.api_key_prefix = key_prefix(token)
    if account is None:
        raise unauthorized(
            "Invalid, expired or revoked credentials", protocol_code=INVALID_KEY_CODE
        )
    return account


async def bearer_account(runtime: Runtime, token: str) -> Account | None:
    """The active account an API key or JWT belongs to, or None (also for the realtime
    endpoints, which check a credential again when its account or key changes)."""
    if looks_like_key(token):
        return await runtime.keys.authenticate(token)
    return await _active(runtime, runtime.tokens.subject(token))


async def session_account(runtime: Runtime, session: str) -> Account | None:
    """The active account a session cookie's value names, or None (also once logged out)."""
    return await _active(runtime, await runtime.sessions.user_id(session))


async def _active(runtime: Runtime, user_id: str | None) -> Account | None:
    if user_id is None:
        return None
    account = await runtime.accounts.get(user_id)
    return None if account is None or account.disabled else account


async def _check_csrf(request: Request) -> None:
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not expected or sent is None or not hmac.compare_digest(expected, sent):
        raise ApiError(403, "csrf_failed", "Missing or wrong CSRF token for a cookie session")


def unauthorized(message: str, *, protocol_code: str | None = None) -> ApiError:
    """A 401; on /v1 coded as the protocol codes it: `invalid_api_key` for a credential that
    is wrong, no code for one that is missing."""
    return ApiError(
        401,
        "unauthorized",
        message,
        headers={"WWW-Authenticate": "Bearer"},
        protocol=ProtocolForm(protocol_code),
    )
