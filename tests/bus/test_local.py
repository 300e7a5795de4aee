"""The in-process bus: every subscriber gets every notice, a slow one gets a RESYNC instead."""

from __future__ import annotations

import anyio
import pytest

from reelforge.bus import LocalBus, Notice, Topic

pytestmark = pytest.mark.anyio

CHANGED = Notice(Topic.VIDEO, "video_1", "user_1", frozenset({"state"}))


async def test_every_subscriber_gets_what_is_published_after_it_subscribed() -> None:
    bus = LocalBus()
    await bus.publish(Notice(Topic.VIDEO, "before"))
    async with bus.subscribe() as first, bus.subscribe() as second:
        await bus.publish(CHANGED)
        with anyio.fail_after(5):
            assert await anext(aiter(first)) == CHANGED
            assert await anext(aiter(second)) == CHANGED


async def test_a_waiting_subscriber_wakes_for_a_notice() -> None:
    bus = LocalBus()
    received: list[Notice] = []
    async with bus.subscribe() as notices, anyio.create_task_group() as tasks:

        async def take_one() -> None:
            received.append(await anext(aiter(notices)))

        tasks.start_soon(take_one)
        await anyio.wait_all_tasks_blocked()
        await bus.publish(CHANGED)
    assert received == [CHANGED]


async def test_a_subscriber_that_falls_behind_gets_one_resync_and_then_new_notices() -> None:
    bus = LocalBus(backlog=3)
    async with bus.subscribe() as notices:
        for number in range(10):
            await bus.publish(Notice(Topic.VIDEO, f"video_{number}"))
        await bus.publish(CHANGED)
        iterator = aiter(notices)
        with anyio.fail_after(5):
            first = await anext(iterator)
            rest = [await anext(iterator) for _ in range(3)]
    assert first.topic is Topic.RESYNC
    # What overflowed is gone (the backlog of 3 overflowed at video_3 and video_7); what came
    # after the last overflow is kept, in order.
    assert [notice.id for notice in rest] == ["video_8", "video_9", "video_1"]


async def test_leaving_the_subscription_stops_delivery() -> None:
    bus = LocalBus()
    async with bus.subscribe():
        assert bus.subscribers == 1
    assert bus.subscribers == 0


def test_a_notice_survives_its_encoding_and_garbage_is_refused() -> None:
    assert Notice.decode(CHANGED.encode()) == CHANGED
    for garbage in (b"", b"{}", b'["nope", "x", null, []]', b"\x00\xff"):
        with pytest.raises(ValueError, match="not a bus notice"):
            Notice.decode(garbage)
