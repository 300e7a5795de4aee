"""Housekeeping on a real database of each dialect: stale temporaries and long-deleted videos."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video, VideoEvent, WebhookDelivery, WebhookReceipt
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.services.housekeeping import Housekeeping
from reelforge.services.webhook_endpoints import Webhooks
from reelforge.storage import Storage, open_storage

pytestmark = pytest.mark.anyio

TTL = timedelta(minutes=60)
RETENTION = timedelta(days=7)


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "memory":
        return open_storage("memory://")
    return open_storage(f"file://{tmp_path / 'objects'}")


@pytest.fixture
def housekeeping(database: Database, storage: Storage) -> Housekeeping:
    return Housekeeping(database, storage, temporary_ttl=TTL, deleted_retention=RETENTION)


async def keys(storage: Storage, prefix: str = "") -> set[str]:
    return {info.key async for info in storage.list(prefix)}


# --- temporaries ------------------------------------------------------------------------


async def test_temporaries_older_than_the_ttl_are_removed(
    housekeeping: Housekeeping, storage: Storage
) -> None:
    first = await storage.put_temporary(b"half a download")
    second = await storage.put_temporary(b"another")
    assert await keys(storage, "tmp") == {first.key, second.key}

    assert await housekeeping.remove_stale_temporaries(utcnow() + TTL + timedelta(minutes=1)) == 2
    assert await keys(storage, "tmp") == set()
    # A second run finds nothing and is not an error.
    assert await housekeeping.remove_stale_temporaries(utcnow() + 2 * TTL) == 0


async def test_nothing_younger_than_the_ttl_is_removed(
    housekeeping: Housekeeping, storage: Storage
) -> None:
    fresh = await storage.put_temporary(b"being committed right now")
    assert await housekeeping.remove_stale_temporaries() == 0
    assert await housekeeping.remove_stale_temporaries(utcnow() + TTL - timedelta(minutes=1)) == 0
    assert await keys(storage, "tmp") == {fresh.key}


async def test_an_old_name_stamp_alone_does_not_make_a_temporary_stale(
    housekeeping: Housekeeping, storage: Storage
) -> None:
    # A long download is named when it starts; it is stale only once it has also sat written
    # for the TTL, so the store's mtime (just now) keeps it.
    key = f"tmp/20200101T000000Z-{uuid.uuid4().hex}"
    await storage.put(key, b"a long download that just finished")
    assert await housekeeping.remove_stale_temporaries() == 0
    assert await keys(storage, "tmp") == {key}


async def test_committed_archive_objects_are_never_touched(
    housekeeping: Housekeeping, storage: Storage
) -> None:
    committed = await storage.commit(
        await storage.put_temporary(b"the video"), "videos/video_1/video.mp4"
    )
    await storage.put("references/video_1", b"an input reference")
    await storage.put("tmpfile/not-a-temporary", b"a neighbour of tmp/")
    stale = await storage.put_temporary(b"left by a killed worker")

    far_future = utcnow() + timedelta(days=365)
    assert await housekeeping.remove_stale_temporaries(far_future) == 1
    assert await keys(storage) == {
        committed.key,
        "references/video_1",
        "tmpfile/not-a-temporary",
    }
    assert stale.key not in await keys(storage)
    assert await storage.read(committed.key) == b"the video"


# --- deleted videos ---------------------------------------------------------------------


async def add_video(
    database: Database, storage: Storage, owner: Account, **values: Any
) -> tuple[str, list[str]]:
    """An archived video with its objects and a reserve+settle in the ledger."""
    video_id = f"video_{uuid.uuid4().hex}"
    objects = [
        f"videos/{video_id}/video.mp4",
        f"videos/{video_id}/thumbnail.webp",
        f"videos/{video_id}/spritesheet.jpg",
        f"references/{video_id}",
    ]
    for key in objects:
        await storage.put(key, f"bytes of {key}".encode())
    async with database.session() as session, session.begin():
        session.add(
            Video(
                id=video_id,
                owner_id=owner.id,
                provider="emulator",
                model="sora-2",
                prompt="a lighthouse",
                size="1280x720",
                seconds=4,
                job_state="completed",
                video_key=objects[0],
                video_bytes=10,
                thumbnail_key=objects[1],
                spritesheet_key=objects[2],
                input_reference_key=objects[3],
                metadata_={"note": "kept"},
                **values,
            )
        )
        await session.flush()
        session.add(VideoEvent(video_id=video_id, kind="deleted"))
        for kind in ("reserve", "settle"):
            session.add(
                LedgerEntry(user_id=owner.id, video_id=video_id, kind=kind, amount=Decimal("0.4"))
            )
    return video_id, objects


async def load(database: Database, video_id: str) -> Video:
    async with database.session() as session:
        video = await session.get(Video, video_id)
        assert video is not None
        return video


async def test_a_long_deleted_video_loses_its_objects_but_keeps_its_row_and_ledger(
    database: Database, storage: Storage, housekeeping: Housekeeping, ada: Account
) -> None:
    now = utcnow()
    video_id, _objects = await add_video(
        database, storage, ada, deleted_at=now - RETENTION - timedelta(hours=1)
    )

    assert await housekeeping.purge_deleted(now) == 1
    assert await keys(storage) == set()
    video = await load(database, video_id)
    assert (video.video_key, video.thumbnail_key, video.spritesheet_key) == (None, None, None)
    assert video.input_reference_key is None
    assert video.metadata_ == {"note": "kept", "purged_at": now.isoformat()}
    # Sizes and the money stay: they are history, not content.
    assert video.video_bytes == 10
    async with database.session() as session:
        kinds = (
            await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.video_id == video_id))
        ).all()
        events = (
            await session.scalars(select(VideoEvent.kind).where(VideoEvent.video_id == video_id))
        ).all()
    assert sorted(kinds) == ["reserve", "settle"]
    assert events == ["deleted"]
    # Purged once: the next run has nothing to do.
    assert await housekeeping.purge_deleted(now + timedelta(days=1)) == 0


async def test_objects_already_gone_are_not_an_error(
    database: Database, storage: Storage, housekeeping: Housekeeping, ada: Account
) -> None:
    now = utcnow()
    video_id, objects = await add_video(database, storage, ada, deleted_at=now - 2 * RETENTION)
    for key in objects:  # what the engine's cleanup step already did
        await storage.delete(key)
    assert await housekeeping.purge_deleted(now) == 1
    assert (await load(database, video_id)).video_key is None


@pytest.mark.parametrize(
    "case",
    ["live", "within_retention", "cleanup_pending", "leased"],
)
async def test_videos_not_due_for_purging_are_left_alone(
    database: Database, storage: Storage, housekeeping: Housekeeping, ada: Account, case: str
) -> None:
    now = utcnow()
    long_ago = now - RETENTION - timedelta(days=1)
    cases: dict[str, dict[str, datetime | None]] = {
        "live": {"deleted_at": None},
        "within_retention": {"deleted_at": now - RETENTION + timedelta(hours=1)},
        "cleanup_pending": {"deleted_at": long_ago, "next_check_at": long_ago},
        "leased": {"deleted_at": long_ago, "lease_until": now + timedelta(minutes=1)},
    }
    video_id, objects = await add_video(database, storage, ada, **cases[case])

    assert await housekeeping.purge_deleted(now) == 0
    assert await keys(storage) == set(objects)
    video = await load(database, video_id)
    assert video.video_key == objects[0]
    assert "purged_at" not in video.metadata_


async def test_a_key_that_is_not_the_videos_own_is_forgotten_but_not_deleted(
    database: Database, storage: Storage, housekeeping: Housekeeping, ada: Account
) -> None:
    now = utcnow()
    survivor_id, survivor_objects = await add_video(database, storage, ada)
    # A (corrupt) deleted row pointing at another video's archive must not destroy it.
    stray_id, stray_objects = await add_video(
        database,
        storage,
        ada,
        deleted_at=now - 2 * RETENTION,
    )
    async with database.session() as session, session.begin():
        stray = await session.get(Video, stray_id)
        assert stray is not None
        stray.video_key = survivor_objects[0]

    assert await housekeeping.purge_deleted(now) == 1
    assert await keys(storage) == set(survivor_objects) | {stray_objects[0]}
    assert (await load(database, stray_id)).video_key is None
    assert (await load(database, survivor_id)).video_key == survivor_objects[0]


# --- webhook records --------------------------------------------------------------------


async def test_old_webhook_receipts_and_finished_deliveries_are_pruned(
    housekeeping: Housekeeping, database: Database, ada: Account
) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=40), now - timedelta(hours=1)
    endpoint, _ = await Webhooks(database).create_endpoint(ada, "https://hooks.example.org/in")
    async with database.session() as session, session.begin():
        for number, when in enumerate((old, recent)):
            session.add(
                WebhookReceipt(
                    provider="emulator",
                    webhook_id=f"msg_{number}",
                    event_type="video.completed",
                    received_at=when,
                )
            )
        for status, when in [
            ("delivered", old),
            ("failed", old),
            ("pending", old),  # still owed, however old
            ("delivered", recent),
        ]:
            session.add(
                WebhookDelivery(
                    id=f"wh_{uuid.uuid4().hex[:12]}",
                    endpoint_id=endpoint.id,
                    event_id=f"evt_{uuid.uuid4().hex[:12]}",
                    event_type="video.completed",
                    status=status,
                    created_at=when,
                )
            )

    assert await housekeeping.prune_webhook_records(now) == 3

    async with database.session() as session:
        receipts = (await session.scalars(select(WebhookReceipt.webhook_id))).all()
        left = (
            await session.execute(select(WebhookDelivery.status, WebhookDelivery.created_at))
        ).all()
    assert receipts == ["msg_1"]
    assert sorted(status for status, _ in left) == ["delivered", "pending"]
    assert await housekeeping.prune_webhook_records(now) == 0
