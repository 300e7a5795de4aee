"""JWT bearer tokens and browser session values, signed with the instance's secret key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow

ALGORITHM = "HS256"
ISSUER = "reelforge"
API_AUDIENCE = "reelforge-api"
SESSION_AUDIENCE = "reelforge-session"


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
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) else None

    def claims(self, token: str, audience: str) -> SignedClaims | None:
        """A valid, unexpired token's claims, its id included; None for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "aud", "iss", "jti"]},
            )
        except jwt.PyJWTError:
            return None
        subject, token_id, expiry = claims.get("sub"), claims.get("jti"), claims.get("exp")
        if not (isinstance(subject, str) and isinstance(token_id, str)) or len(token_id) > 64:
            return None
        if not isinstance(expiry, int):
            return None
        return SignedClaims(subject, token_id, datetime.fromtimestamp(int(expiry), UTC))
