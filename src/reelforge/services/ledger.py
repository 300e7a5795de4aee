"""The ledger: reserve at create, settle on completion, refund on failure, each at most once.

Amounts are signed so that a month's spend is a plain sum: a reserve adds the estimate, a
settle adds the difference between the final cost and the estimate, a refund takes the
estimate back. A video's one settle or refund closes its ledger: whichever comes first stands
and the other is refused, in the statement that writes it (the (video, kind) unique constraint
backs that up).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from reelforge.db import videos as queries
from reelforge.db.group import Batch
from reelforge.db.models import LedgerEntry, Video
from reelforge.domain.clock import utcnow
from reelforge.domain.videos import VideoView

# What a refunded video finally cost.
REFUNDED_COST = Decimal(0)


def reserve(session: AsyncSession, video: Video) -> None:
    session.add(
        LedgerEntry(
            user_id=video.owner_id, video_id=video.id, kind="reserve", amount=video.cost_estimate
        )
    )


async def settle(connection: AsyncConnection, video: Video | VideoView, final: Decimal) -> bool:
    """Charge `final` for `video` and record it as its final cost; False (and nothing written)
    when the video was already settled or refunded.

    Runs on the caller's connection, in its transaction: from an ORM session, pass
    `await session.connection()`, and refresh the video to see its final cost.
    """
    return await _close(connection, video, "settle", final - video.cost_estimate, final)


async def refund(connection: AsyncConnection, video: Video | VideoView) -> bool:
    """Give the reservation back; False when it was already settled or refunded."""
    return await _close(connection, video, "refund", -video.cost_estimate, REFUNDED_COST)


def defer_settle(batch: Batch, video: Video | VideoView, final: Decimal) -> None:
    """`settle`, at the end of the job engine's batch (db.group), for the write that ended the
    job and put its final cost in already (`fenced(final_cost=)`): nothing waits on the answer."""
    _defer_close(batch, video, "settle", final - video.cost_estimate)


def defer_refund(batch: Batch, video: Video | VideoView) -> None:
    """`refund`, as `defer_settle`."""
    _defer_close(batch, video, "refund", -video.cost_estimate)


async def _close(
    connection: AsyncConnection,
    video: Video | VideoView,
    kind: str,
    amount: Decimal,
    final: Decimal,
) -> bool:
    closed = await queries.close_ledger(
        connection,
        user_id=video.owner_id,
        video_id=video.id,
        kind=kind,
        amount=amount,
        now=utcnow(),
    )
    # The engine's last write of a job puts the final cost in already (`fenced(final_cost=)`).
    if closed and video.cost_final != final:
        await queries.record_final_cost(connection, video.id, final)
    return closed


def _defer_close(batch: Batch, video: Video | VideoView, kind: str, amount: Decimal) -> None:
    queries.defer_close_ledger(
        batch, user_id=video.owner_id, video_id=video.id, kind=kind, amount=amount, now=utcnow()
    )
