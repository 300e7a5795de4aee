"""The ledger on both databases: a video's first settle or refund closes it, once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.services import ledger
from reelforge.services.videos import NewVideo, Videos
from tests.support.engine import ledger_of

pytestmark = pytest.mark.anyio


async def close(database: Database, video_id: str, how: str) -> tuple[bool, Decimal | None]:
    """Settle at 0.25 or refund in a transaction of its own; what it said and the final cost."""
    async with database.session() as session, session.begin():
        video = await session.get_one(Video, video_id)
        connection = await session.connection()
        if how == "settle":
            closed = await ledger.settle(connection, video, Decimal("0.25"))
        else:
            closed = await ledger.refund(connection, video)
    async with database.session() as session:
        return closed, (await session.get_one(Video, video_id)).cost_final


@pytest.mark.parametrize(
    ("first", "then"),
    [("settle", "refund"), ("refund", "settle"), ("settle", "settle"), ("refund", "refund")],
)
async def test_the_first_settle_or_refund_closes_the_ledger_and_the_second_changes_nothing(
    database: Database, videos: Videos, ada: Account, first: str, then: str
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a lighthouse"))
    estimate = view.cost_estimate
    amount = {"settle": Decimal("0.25") - estimate, "refund": -estimate}[first]
    final = {"settle": Decimal("0.25"), "refund": Decimal(0)}[first]

    assert await close(database, view.id, first) == (True, final)
    assert await close(database, view.id, then) == (False, final)

    assert await ledger_of(database, view.id) == [("reserve", estimate), (first, amount)]
