"""The ledger on both databases: a video's first settle or refund closes it, once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from reelforge.db.claim import claim_due, fenced
from reelforge.db.engine import Database
from reelforge.db.group import Batch
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.services import ledger
from reelforge.services.videos import NewVideo, Videos
from tests.support.engine import ledger_of

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=30)


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


async def test_the_last_fenced_write_of_a_job_carries_its_final_cost_only_while_the_ledger_is_open(
    database: Database, videos: Videos, ada: Account
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a lighthouse"))
    [claim] = await claim_due(
        database, owner="w1", now=utcnow() + timedelta(seconds=1), lease=LEASE, limit=1
    )

    async def end(final: Decimal, *, then_settle: bool) -> Decimal | None:
        """A job's last write, at `final`, maybe settled in the same batch; its final cost."""
        async with database.transaction() as connection:
            batch = Batch(connection)
            fenced(batch, claim, final_cost=final)
            if then_settle:
                ledger.defer_settle(batch, claim.video, final)
            await batch.flush()
        async with database.session() as session:
            return (await session.get_one(Video, view.id)).cost_final

    assert await end(Decimal("0.25"), then_settle=True) == Decimal("0.25")
    assert await end(Decimal("0.99"), then_settle=True) == Decimal("0.25")
    assert await end(Decimal("0.99"), then_settle=False) == Decimal("0.25")
    settled = Decimal("0.25") - view.cost_estimate
    assert await ledger_of(database, view.id) == [
        ("reserve", view.cost_estimate),
        ("settle", settled),
    ]


async def test_closes_put_off_to_the_end_of_a_batch_close_each_open_ledger_once(
    database: Database, videos: Videos, ada: Account
) -> None:
    views = [(await videos.create(ada, NewVideo(prompt=f"clip {n}")))[0] for n in range(3)]
    await close(database, views[1].id, "refund")

    async with database.transaction() as connection:
        batch = Batch(connection)
        for view in views:
            ledger.defer_settle(batch, view, Decimal("0.25"))
        ledger.defer_refund(batch, views[2])
        await batch.flush()

    estimate = views[0].cost_estimate
    settled = ("settle", Decimal("0.25") - estimate)
    assert [await ledger_of(database, view.id) for view in views] == [
        [("reserve", estimate), settled],
        [("reserve", estimate), ("refund", -estimate)],  # refunded before: the settle refused
        [("reserve", estimate), settled],  # settled first in the batch: the refund refused
    ]
