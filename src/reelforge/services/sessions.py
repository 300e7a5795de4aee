"""Browser sessions: a signed cookie names its account until it expires or logout ends it."""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.exc import IntegrityError

from reelforge.bus import Bus, Notice, Topic
from reelforge.db.engine import Database
from reelforge.db.models import EndedSession
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.services.read_cache import ReadCache
from reelforge.services.tokens import SESSION_AUDIENCE, Tokens


class Sessions:
    """Signed session values, and the ones logout ended (a signature alone can't be taken back)."""

    def __init__(
        self,
        database: Database,
        tokens: Tokens,
        *,
        cache: ReadCache | None = None,
        bus: Bus | None = None,
    ) -> None:
        self._database = database
        self._tokens = tokens
        self._cache = cache or ReadCache()
        self._bus = bus

    def start(self, account: Account) -> str:
        return self._tokens.issue(account, SESSION_AUDIENCE)

    async def user_id(self, value: str) -> str | None:
        """The user a valid session value names, None if it is invalid, expired or ended."""
        claims = self._tokens.claims(value, SESSION_AUDIENCE)
        if claims is None:
            return None
        cache = self._cache
        generation = await cache.current()
        if generation is not None and cache.sessions.get(claims.token_id) == claims.subject:
            return claims.subject
        async with self._database.reading() as connection:
            ended = await connection.scalar(
                select(exists().where(EndedSession.id == claims.token_id))
            )
        if ended:
            return None
        cache.keep(generation, cache.sessions, claims.token_id, claims.subject)
        return claims.subject

    async def end(self, value: str) -> None:
        """End the session for good; an invalid or expired value has nothing left to end."""
        claims = self._tokens.claims(value, SESSION_AUDIENCE)
        if claims is None:
            return
        try:
            async with self._database.transaction() as connection:
                # Rows outlive their use only until the token would have expired anyway.
                await connection.execute(
                    delete(EndedSession).where(EndedSession.expires_at < utcnow())
                )
                await connection.execute(
                    insert(EndedSession).values(id=claims.token_id, expires_at=claims.expires_at)
                )
        except IntegrityError:
            pass  # ended already, by a logout sent twice
        if self._bus is not None:
            notice = Notice(Topic.SESSION, claims.token_id, claims.subject)
            await self._bus.publish(notice)
