"""Outgoing webhooks on both databases: events commit with their change, attempts never double."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from reelforge.db.engine import Database
from reelforge.db.models import WebhookDelivery
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.webhooks import (
    FIRST_RETRY,
    MAX_RETRY,
    EventType,
    check_event_types,
    retry_delay,
)
from reelforge.services import outbound
from reelforge.services.outbound import Deliverer, Webhooks
from reelforge.services.videos import NewVideo, Videos
from tests.support.webhooks import Receiver, receiving

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as hook:
        yield hook


async def _count(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def test_retry_delay_doubles_with_jitter_up_to_the_cap() -> None:
    assert retry_delay(1, 0.5) == FIRST_RETRY
    assert retry_delay(2, 0.5) == FIRST_RETRY * 2
    assert retry_delay(1, 0.0) == FIRST_RETRY * 0.75
    assert retry_delay(1, 0.999999) < FIRST_RETRY * 1.25
    assert retry_delay(30, 0.5) == MAX_RETRY
    assert retry_delay(10**9, 0.999) < MAX_RETRY * 1.25
    lows = [retry_delay(n, 0.0) for n in range(1, 12)]
    assert lows == sorted(lows)
    with pytest.raises(ValueError, match="attempts"):
        retry_delay(0, 0.5)
    with pytest.raises(ValueError, match="jitter"):
        retry_delay(1, 1.0)


def test_event_types_keep_the_catalog_order() -> None:
    assert check_event_types(["video.failed", "video.created", "video.failed"]) == [
        EventType.VIDEO_CREATED,
        EventType.VIDEO_FAILED,
    ]


async def test_an_event_exists_only_if_its_transaction_commits(
    database: Database, videos: Videos, ada: Account
) -> None:
    await Webhooks(database).create_endpoint(ada, "https://hooks.example.org/")
    view, _ = await videos.create(ada, NewVideo(prompt="a fox in snow"))
    assert await _count(database) == 1  # video.created, with the create

    async def failing_change() -> None:
        async with database.session() as session, session.begin():
            assert await outbound.emit(session, view, "video.progress") == 1
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert await _count(database) == 1

    async with database.session() as session, session.begin():
        assert await outbound.emit(session, view, EventType.VIDEO_COMPLETED) == 1
    assert await _count(database) == 2


async def test_emit_rejects_unknown_event_types(
    database: Database, videos: Videos, ada: Account
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a fox in snow"))
    async with database.session() as session:
        with pytest.raises(ValueError, match=r"video\.exploded"):
            await outbound.emit(session, view, "video.exploded")


class _Rendezvous:
    """Lets each of `parties` through only once all have arrived."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_here = anyio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == self.parties:
            self.all_here.set()
        await self.all_here.wait()


class _Lockstep(Deliverer):
    """A deliverer that, having read what is due, waits for the others to read it too: the
    worst interleaving, forced, so the guarded claim has to settle who sends."""

    def __init__(self, database: Database, rendezvous: _Rendezvous) -> None:
        super().__init__(database)
        self._rendezvous = rendezvous

    async def _due(self, now: datetime, limit: int) -> Any:
        due = await super()._due(now, limit)
        await self._rendezvous.wait()
        return due


async def test_two_deliverers_never_send_the_same_attempt(
    database: Database, migrated_url: str, videos: Videos, ada: Account, receiver: Receiver
) -> None:
    endpoint, _ = await Webhooks(database).create_endpoint(
        ada, receiver.url, event_types=["video.created"]
    )
    for n in range(12):
        await videos.create(ada, NewVideo(prompt=f"frame {n}"))
    other = Database(migrated_url)  # its own connection pool, as another process has
    rendezvous = _Rendezvous(3)
    counts: list[int] = []

    async def run(deliverer: Deliverer) -> None:
        counts.append(await deliverer.deliver_due(limit=100))

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, _Lockstep(database, rendezvous))
            tasks.start_soon(run, _Lockstep(other, rendezvous))
            tasks.start_soon(run, _Lockstep(other, rendezvous))
    finally:
        await other.close()

    sent = Counter(receiver.webhook_ids())
    assert sum(counts) == 12
    assert len(sent) == 12
    assert set(sent.values()) == {1}
    async with database.session() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert {(row.status, row.attempts) for row in rows} == {("delivered", 1)}
    assert {row.endpoint_id for row in rows} == {endpoint.id}


async def test_a_delivery_fails_for_good_after_its_last_attempt(
    database: Database, videos: Videos, ada: Account, receiver: Receiver
) -> None:
    receiver.status = 503
    await Webhooks(database).create_endpoint(ada, receiver.url, event_types=["video.created"])
    await videos.create(ada, NewVideo(prompt="a fox in snow"))
    deliverer = Deliverer(database, max_attempts=3, jitter=lambda: 0.0)
    now = utcnow()

    for _ in range(3):
        assert await deliverer.deliver_due(now) == 1
        now += timedelta(hours=2)
    assert await deliverer.deliver_due(now) == 0

    async with database.session() as session:
        delivery = (await session.scalars(select(WebhookDelivery))).one()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.next_attempt_at is None
    assert delivery.last_status_code == 503
    assert len(receiver.received) == 3
