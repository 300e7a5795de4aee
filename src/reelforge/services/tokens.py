"""JWT bearer tokens and browser session values, signed with the instance's secret key."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow

ALGORITHM = "HS256"
ISSUER = "reelforge"
API_AUDIENCE = "reelforge-api"
SESSION_AUDIENCE = "reelforge-session"
# The length of `ended_sessions.id`: a token whose id is longer was not issued here.
MAX_TOKEN_ID = 64
_REQUIRED = ["sub", "exp", "iat", "aud", "iss"]
# Past this many remembered tokens the memo starts over (a bound on memory only).
_MEMO_SIZE = 10_000


@dataclass(frozen=True)
class SignedClaims:
    """What a valid token says: whose it is, its own id, and when it stops working."""

    subject: str
    token_id: str
    expires_at: datetime


class Tokens:
    """Issues and checks signed tokens; the audience keeps an API token out of a cookie and back."""

    def __init__(self, secret: str, ttl: timedelta) -> None:
        self._secret = secret
        self.ttl = ttl
        # What a token's signature proved never changes for that token and secret; only its
        # expiry moves with the clock, and it is checked again on every use (`_decode`).
        self._verified: dict[tuple[str, str, int], dict[str, Any]] = {}

    def issue(self, account: Account, audience: str = API_AUDIENCE) -> str:
        now = utcnow()
        claims = {
            "sub": account.id,
            "role": account.role.value,
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl,
            # Names this token alone, so that logout can end one session (services/sessions.py).
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def subject(self, token: str, audience: str = API_AUDIENCE) -> str | None:
        """The user id a valid, unexpired token names, or None for anything else."""
        claims = self._decode(token, audience, _REQUIRED)
        subject = None if claims is None else claims.get("sub")
        return subject if isinstance(subject, str) else None

    def claims(self, token: str, audience: str) -> SignedClaims | None:
        """A valid, unexpired token's claims, its id included; None for anything else."""
        claims = self._decode(token, audience, [*_REQUIRED, "jti"])
        if claims is None:
            return None
        subject, token_id, expiry = claims.get("sub"), claims.get("jti"), claims.get("exp")
        if not (isinstance(subject, str) and isinstance(token_id, str) and isinstance(expiry, int)):
            return None
        if len(token_id) > MAX_TOKEN_ID:
            return None
        return SignedClaims(subject, token_id, datetime.fromtimestamp(expiry, UTC))

    def _decode(self, token: str, audience: str, required: list[str]) -> dict[str, Any] | None:
        memo = (token, audience, len(required))
        known = self._verified.get(memo)
        if known is not None:
            # PyJWT's own rule, without leeway: valid while now is before `exp`.
            return known if known["exp"] > time.time() else None
        claims = self._verify(token, audience, required)
        if claims is not None and isinstance(claims.get("exp"), int | float):
            if len(self._verified) >= _MEMO_SIZE:
                self._verified.clear()
            self._verified[memo] = claims
        return claims

    def _verify(self, token: str, audience: str, required: list[str]) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": required},
            )
        except jwt.PyJWTError:
            return None
        return claims
