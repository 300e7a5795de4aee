"""The ledger: reserve at create, settle on completion, refund on failure, each at most once.

Amounts are signed so that a month's spend is a plain sum: a reserve adds the estimate, a
settle adds the difference between the final cost and the estimate, a refund takes the
estimate back. The (video, kind) unique constraint makes a second settle or refund impossible.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from reelforge.db import videos as queries
from reelforge.db.models import LedgerEntry, Video


def reserve(session: AsyncSession, video: Video) -> None:
    session.add(
        LedgerEntry(
            user_id=video.owner_id, video_id=video.id, kind="reserve", amount=video.cost_estimate
        )
    )


async def settle(session: AsyncSession, video: Video, final: Decimal) -> bool:
    """Charge `final` for `video`; False when it was already settled or refunded."""
    if await queries.ledger_kinds(session, video.id) & {"settle", "refund"}:
        return False
    video.cost_final = final
    session.add(
        LedgerEntry(
            user_id=video.owner_id,
            video_id=video.id,
            kind="settle",
            amount=final - video.cost_estimate,
        )
    )
    return True


async def refund(session: AsyncSession, video: Video) -> bool:
    """Give the reservation back; False when it was already settled or refunded."""
    if await queries.ledger_kinds(session, video.id) & {"settle", "refund"}:
        return False
    video.cost_final = Decimal(0)
    session.add(
        LedgerEntry(
            user_id=video.owner_id, video_id=video.id, kind="refund", amount=-video.cost_estimate
        )
    )
    return True
