"""The ledger on both databases: a video's first settle or refund closes it, once, and the
final cost written with it stays the one that closed it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reelforge.db import videos as queries
from reelforge.db.claim import fenced
from reelforge.db.engine import Database
from reelforge.db.group import Batch
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.lifecycle import REFUNDED_COST
from reelforge.domain.videos import VideoView
from reelforge.services.jobs import Jobs
from reelforge.services.videos import NewVideo, Videos
from tests.support.engine import ledger_of

pytestmark = pytest.mark.anyio

SETTLED = Decimal("0.25")


def closing(batch: Batch, view: VideoView, how: str, final: Decimal) -> None:
    amount = final - view.cost_estimate
    queries.close_ledger(
        batch, user_id=view.owner_id, video_id=view.id, kind=how, amount=amount, now=utcnow()
    )


async def close(database: Database, view: VideoView, how: str, final: Decimal) -> Decimal | None:
    """A job's ending write at `final` with its settle or refund, as the lifecycle writes
    them in one unit of work; the video's final cost after it."""
    before = await Jobs(database).video(view.id)
    assert before is not None
    async with database.transaction() as connection:
        batch = Batch(connection)
        fenced(batch, before, before, final_cost=final)
        closing(batch, view, how, final)
        await batch.flush()
    after = await Jobs(database).video(view.id)
    assert after is not None
    return after.cost_final


@pytest.mark.parametrize(
    ("first", "then"),
    [("settle", "refund"), ("refund", "settle"), ("settle", "settle"), ("refund", "refund")],
)
async def test_the_first_settle_or_refund_closes_the_ledger_and_the_second_changes_nothing(
    database: Database, videos: Videos, ada: Account, first: str, then: str
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a lighthouse"))
    estimate = view.cost_estimate
    final = {"settle": SETTLED, "refund": REFUNDED_COST}[first]

    assert await close(database, view, first, final) == final
    assert await close(database, view, then, Decimal("0.99")) == final

    assert await ledger_of(database, view.id) == [("reserve", estimate), (first, final - estimate)]


async def test_closes_in_one_batch_close_each_open_ledger_once(
    database: Database, videos: Videos, ada: Account
) -> None:
    views = [(await videos.create(ada, NewVideo(prompt=f"clip {n}")))[0] for n in range(3)]
    await close(database, views[1], "refund", REFUNDED_COST)

    async with database.transaction() as connection:
        batch = Batch(connection)
        for view in views:
            closing(batch, view, "settle", SETTLED)
        closing(batch, views[2], "refund", REFUNDED_COST)
        await batch.flush()

    estimate = views[0].cost_estimate
    settled = ("settle", SETTLED - estimate)
    assert [await ledger_of(database, view.id) for view in views] == [
        [("reserve", estimate), settled],
        [("reserve", estimate), ("refund", -estimate)],  # refunded before: the settle refused
        [("reserve", estimate), settled],  # settled first in the batch: the refund refused
    ]
