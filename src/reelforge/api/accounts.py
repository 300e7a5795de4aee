"""Signing in (JWT tokens and browser sessions), the caller's own account, and API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from reelforge.api.auth import SESSION_COOKIE, CurrentAccount, end_session, start_session
from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute
from reelforge.api.errors import ApiError, documented
from reelforge.api.schemas import (
    AccountOut,
    Credentials,
    Envelope,
    KeyIn,
    KeyOut,
    NewKeyOut,
    TokenOut,
    UsageOut,
)
from reelforge.domain.accounts import Account

router = APIRouter(prefix="/api", tags=["accounts"], route_class=EdgeRoute)


async def _sign_in(request: Request, runtime: RuntimeDep, credentials: Credentials) -> Account:
    # Counted before the password is checked: each check costs a deliberately slow hash, and a
    # guesser learns nothing from attempts that are refused unchecked.
    address = request.client.host if request.client else "unknown"
    decision = await runtime.login_limiter.hit(
        f"account:{credentials.email.strip().lower()}", f"address:{address}"
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many sign-in attempts; retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )
    account = await runtime.accounts.authenticate(credentials.email, credentials.password)
    if account is None:
        raise ApiError(401, "invalid_credentials", "Wrong email or password")
    return account


@router.post(
    "/auth/token", responses=documented(400, 401, 422, 429), summary="Get a JWT bearer token"
)
async def issue_token(
    credentials: Credentials, request: Request, runtime: RuntimeDep
) -> Envelope[TokenOut]:
    token = runtime.tokens.issue(await _sign_in(request, runtime, credentials))
    return Envelope(
        data=TokenOut(access_token=token, expires_in=int(runtime.tokens.ttl.total_seconds()))
    )


@router.post(
    "/auth/login",
    responses=documented(400, 401, 422, 429),
    summary="Start a browser session (cookie)",
)
async def login(
    credentials: Credentials, request: Request, response: Response, runtime: RuntimeDep
) -> Envelope[AccountOut]:
    account = await _sign_in(request, runtime, credentials)
    token = runtime.sessions.start(account)
    start_session(response, token, secure=request.url.scheme == "https")
    return Envelope(data=AccountOut.of(account))


@router.post("/auth/logout", summary="End the browser session (its cookie stops working)")
async def logout(
    request: Request, response: Response, runtime: RuntimeDep
) -> Envelope[dict[str, bool]]:
    session = request.cookies.get(SESSION_COOKIE)
    if session is not None:
        await runtime.sessions.end(session)
    end_session(response)
    return Envelope(data={"logged_out": True})


@router.get("/me", responses=documented(401), summary="The caller's account")
async def me(account: CurrentAccount) -> Envelope[AccountOut]:
    return Envelope(data=AccountOut.of(account))


class PasswordChangeIn(BaseModel):
    current_password: str
    new_password: str = Field(description="At least 10 characters.")


@router.post(
    "/me/password", responses=documented(400, 401, 422), summary="Change your own password"
)
async def change_password(
    body: PasswordChangeIn, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[dict[str, bool]]:
    await runtime.accounts.change_password(account, body.current_password, body.new_password)
    return Envelope(data={"changed": True})


@router.get("/me/usage", responses=documented(401), summary="Quota and budget used")
async def my_usage(account: CurrentAccount, runtime: RuntimeDep) -> Envelope[UsageOut]:
    return Envelope(data=UsageOut.of(await runtime.quotas.usage(account)))


@router.get("/keys", responses=documented(401), summary="Your API keys (never the secret)")
async def list_keys(account: CurrentAccount, runtime: RuntimeDep) -> Envelope[list[KeyOut]]:
    return Envelope(data=[KeyOut.of(key) for key in await runtime.keys.list(account)])


@router.post(
    "/keys", status_code=201, responses=documented(400, 401, 422), summary="Create an API key"
)
async def create_key(
    body: KeyIn, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[NewKeyOut]:
    info, token = await runtime.keys.create(account, body.name)
    return Envelope(data=NewKeyOut(**KeyOut.of(info).model_dump(), key=token))


@router.delete("/keys/{key_id}", responses=documented(401, 404), summary="Revoke an API key")
async def revoke_key(key_id: str, account: CurrentAccount, runtime: RuntimeDep) -> Envelope[KeyOut]:
    return Envelope(data=KeyOut.of(await runtime.keys.revoke(account, key_id)))
