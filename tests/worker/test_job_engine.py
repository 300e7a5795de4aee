"""The job engine against the real emulator and each database: one upstream job per request,
faults recovered, money settled or refunded once, archives that match their hashes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import pytest
import standardwebhooks
from fastapi import FastAPI
from sqlalchemy import select

from reelforge.db.engine import Database
from reelforge.db.models import WebhookDelivery
from reelforge.domain.accounts import Account
from reelforge.services.videos import NewVideo, Videos
from reelforge.services.webhook_delivery import Deliverer
from reelforge.services.webhook_endpoints import Webhooks
from reelforge.storage import Storage
from reelforge.worker.engine import Every
from tests.support.engine import (
    ledger_of,
    run_until_settled,
    upstream_jobs,
    video_row,
)
from tests.support.webhooks import receiving, silent_receiver

pytestmark = pytest.mark.anyio


async def test_a_video_is_submitted_tracked_archived_and_settled(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    storage: Storage,
    upstream: FastAPI,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a harbour at dawn", size="1280x720"))

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "completed"
    assert video.video_key is not None
    assert video.video_sha256 == await storage.sha256(video.video_key)
    assert video.video_bytes == (await storage.head(video.video_key)).size
    assert video.thumbnail_key is not None
    assert video.spritesheet_key is not None
    assert await ledger_of(database, view.id) == [
        ("reserve", Decimal("0.40")),
        ("settle", Decimal("0")),
    ]
    assert [job["id"] for job in upstream_jobs(upstream)] == [video.provider_video_id]


async def test_a_create_answered_too_late_makes_one_upstream_job(
    make_engine: Any, videos: Videos, ada: Account, database: Database, upstream: FastAPI
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="a slow start [[late-create=2]]"))

    await run_until_settled([make_engine(timeout=0.5)], database)

    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    assert [job["id"] for job in upstream_jobs(upstream)] == [video.provider_video_id]


@pytest.mark.parametrize("tag", ["[[5xx=2]]", "[[429=2]]"])
async def test_transient_upstream_errors_are_retried_without_duplicates(
    make_engine: Any,
    videos: Videos,
    ada: Account,
    database: Database,
    upstream: FastAPI,
    tag: str,
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt=f"weathering the storm {tag}"))

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "completed", video.last_error
    assert len(upstream_jobs(upstream)) == 1


async def test_an_upstream_failure_fails_the_video_and_refunds_once(
    make_engine: Any, videos: Videos, ada: Account, database: Database
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="doomed [[fail]]"))

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "failed"
    assert video.error_code == "video_generation_failed"
    assert await ledger_of(database, view.id) == [
        ("reserve", Decimal("0.40")),
        ("refund", Decimal("-0.40")),
    ]


async def test_a_rejected_request_fails_without_retrying(
    make_engine: Any, videos: Videos, ada: Account, database: Database, upstream: FastAPI
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="not allowed [[moderation=create]]"))

    await run_until_settled([make_engine()], database)

    video = await video_row(database, view.id)
    assert video.job_state == "failed"
    assert video.attempts == 1
    assert upstream_jobs(upstream) == []


async def test_two_engines_share_the_work_without_double_claims(
    make_engine: Any, videos: Videos, ada: Account, database: Database, upstream: FastAPI
) -> None:
    ids = [(await videos.create(ada, NewVideo(prompt=f"clip {i}")))[0].id for i in range(6)]

    await run_until_settled([make_engine(), make_engine()], database, seconds=120)

    rows = [await video_row(database, video_id) for video_id in ids]
    assert {row.job_state for row in rows} == {"completed"}
    assert sorted(job["id"] for job in upstream_jobs(upstream)) == sorted(
        row.provider_video_id for row in rows
    )


async def test_a_freed_slot_is_filled_at_once_not_after_the_idle_wait(
    make_engine: Any, videos: Videos, ada: Account, database: Database
) -> None:
    ids = [(await videos.create(ada, NewVideo(prompt=f"queue {i}")))[0].id for i in range(3)]
    # One slot, and an idle wait far longer than the test may take: only the end of a step
    # can start the next one in time.
    engine = make_engine(concurrency=1, idle_seconds=120)

    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(engine.run, stopping)
        with anyio.fail_after(30):
            while not all([(await video_row(database, i)).provider_video_id for i in ids]):
                await anyio.sleep(0.05)
        stopping.set()


async def test_finished_videos_are_announced_to_subscribed_endpoints(
    make_engine: Any, videos: Videos, ada: Account, database: Database
) -> None:
    # The receiver is on loopback.
    webhooks = Webhooks(database, allow_private_addresses=True)
    deliverer = Deliverer(database, allow_private_addresses=True)
    with receiving() as receiver:
        _, secret = await webhooks.create_endpoint(
            ada, receiver.url, event_types=["video.completed", "video.failed"]
        )
        done, _ = await videos.create(ada, NewVideo(prompt="a kite"))
        failed, _ = await videos.create(ada, NewVideo(prompt="no kite [[fail]]"))

        await run_until_settled([make_engine()], database)
        await deliverer.deliver_due()

        events = {}
        for headers, body in receiver.received:
            event = standardwebhooks.Webhook(secret).verify(body, headers)
            events[event["data"]["id"]] = event["type"]
    assert events == {done.id: "video.completed", failed.id: "video.failed"}


async def test_a_receiver_that_never_answers_holds_up_no_other_video(
    make_engine: Any, videos: Videos, ada: Account, bob: Account, database: Database
) -> None:
    webhooks = Webhooks(database, allow_private_addresses=True)
    # Its sends wait for as long as the test runs: a claim loop that waited for them would
    # never claim Bob's video.
    deliverer = Deliverer(database, allow_private_addresses=True, timeout=3600)
    with silent_receiver() as url:
        await webhooks.create_endpoint(ada, url, event_types=["video.completed"])
        adas, _ = await videos.create(ada, NewVideo(prompt="Ada's kite"))
        engine = make_engine(periodic=[Every(0.01, deliverer.deliver_due)])
        stopping = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(engine.run, stopping)
            with anyio.fail_after(30):
                while not await _attempted_deliveries(database):
                    await anyio.sleep(0.05)
            bobs, _ = await videos.create(bob, NewVideo(prompt="Bob's kite"))
            engine.wake()
            with anyio.fail_after(30):
                while (await video_row(database, bobs.id)).job_state != "completed":
                    await anyio.sleep(0.05)
            stopping.set()
    assert (await video_row(database, adas.id)).job_state == "completed"


async def _attempted_deliveries(database: Database) -> int:
    async with database.session() as session:
        rows = await session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.attempts > 0))
        return len(rows.all())
