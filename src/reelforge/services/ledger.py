"""The ledger: reserve at create, settle on completion, refund on failure, each at most once.

Amounts are signed so that a month's spend is a plain sum: a reserve adds the estimate, a
settle adds the difference between the final cost and the estimate, a refund takes the
estimate back. A video's one settle or refund closes its ledger: whichever comes first stands
and the other is refused, in the statement that writes it (the (video, kind) unique constraint
backs that up).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from reelforge.db import videos as queries
from reelforge.db.models import LedgerEntry, Video
from reelforge.domain.clock import utcnow


def reserve(session: AsyncSession, video: Video) -> None:
    session.add(
        LedgerEntry(
            user_id=video.owner_id, video_id=video.id, kind="reserve", amount=video.cost_estimate
        )
    )


async def settle(session: AsyncSession, video: Video, final: Decimal) -> bool:
    """Charge `final` for `video`; False when it was already settled or refunded."""
    return await _close(session, video, "settle", final - video.cost_estimate, final)


async def refund(session: AsyncSession, video: Video) -> bool:
    """Give the reservation back; False when it was already settled or refunded."""
    return await _close(session, video, "refund", -video.cost_estimate, Decimal(0))


async def _close(
    session: AsyncSession, video: Video, kind: str, amount: Decimal, final: Decimal
) -> bool:
    closed = await queries.close_ledger(
        session, user_id=video.owner_id, video_id=video.id, kind=kind, amount=amount, now=utcnow()
    )
    if closed:
        video.cost_final = final
    return closed
