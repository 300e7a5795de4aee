"""Housekeeping the engine runs periodically: stale temporaries, purged deleted videos and old
webhook records.

Both tasks are idempotent and bounded per run, so any number of workers may run them at once
and a crash half-way through is finished by the next run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update

from reelforge.db.engine import Database
from reelforge.db.models import Video, WebhookDelivery, WebhookReceipt
from reelforge.domain.clock import utcnow
from reelforge.domain.webhooks import DeliveryStatus
from reelforge.logs import get_logger
from reelforge.storage import TEMPORARY_PREFIX, Storage

log = get_logger("reelforge.housekeeping")

# The stamp `Storage.put_temporary` puts in front of a temporary key's random part.
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_KEY_COLUMNS = ("video_key", "thumbnail_key", "spritesheet_key", "input_reference_key")


class Housekeeping:
    def __init__(
        self,
        database: Database,
        storage: Storage,
        *,
        temporary_ttl: timedelta = timedelta(minutes=60),
        deleted_retention: timedelta = timedelta(days=7),
        receipt_retention: timedelta = timedelta(days=1),
        delivery_retention: timedelta = timedelta(days=30),
        batch: int = 100,
    ) -> None:
        self._database = database
        self._storage = storage
        self._temporary_ttl = temporary_ttl
        self._deleted_retention = deleted_retention
        # Receipts dedupe redeliveries, which signatures only accept within minutes of sending;
        # a day is ample. Finished deliveries are the log users list and replay.
        self._receipt_retention = receipt_retention
        self._delivery_retention = delivery_retention
        self._batch = batch

    async def remove_stale_temporaries(self, now: datetime | None = None) -> int:
        """Delete temporary objects older than the TTL; return how many were deleted.

        An object is stale only when both its name stamp and its store mtime are older than
        the TTL: the stamp is taken before a download starts streaming, the mtime when it
        finished, so the later of the two is when a worker last had a use for it.
        """
        cutoff = (now or utcnow()) - self._temporary_ttl
        stale: list[str] = []
        async for info in self._storage.list(TEMPORARY_PREFIX):
            # The listing is by prefix already; checking again means no other key can go.
            if not info.key.startswith(f"{TEMPORARY_PREFIX}/"):
                continue
            stamp = _stamp_of(info.key)
            youngest = info.last_modified if stamp is None else max(stamp, info.last_modified)
            if youngest < cutoff:
                stale.append(info.key)
        for key in stale:
            await self._storage.delete(key)
        removed = len(stale)
        removed += await self._storage.remove_abandoned_uploads(TEMPORARY_PREFIX, cutoff)
        if removed:
            log.info("removed stale temporaries", count=removed)
        return removed

    async def prune_webhook_records(self, now: datetime | None = None) -> int:
        """Forget old webhook receipts and finished deliveries; return how many rows went.

        Pending deliveries stay whatever their age: they are still owed.
        """
        now = now or utcnow()
        async with self._database.session() as session, session.begin():
            receipts = await session.execute(
                delete(WebhookReceipt).where(
                    WebhookReceipt.received_at < now - self._receipt_retention
                )
            )
            deliveries = await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status != DeliveryStatus.PENDING.value,
                    WebhookDelivery.created_at < now - self._delivery_retention,
                )
            )
        removed = int(getattr(receipts, "rowcount", 0)) + int(getattr(deliveries, "rowcount", 0))
        if removed:
            log.info("pruned webhook records", count=removed)
        return removed

    async def purge_deleted(self, now: datetime | None = None) -> int:
        """Make sure long-deleted videos hold no archived objects; return how many were purged.

        The row stays: its ledger entries are money history (and cascade on delete), and its
        events are the audit trail. Only the archived objects go and the row forgets their keys,
        with `metadata.purged_at` saying when. Only videos whose cleanup step has run
        (`next_check_at` is NULL) and that nobody holds a lease on are considered, so the
        engine and housekeeping never work on the same video.
        """
        now = now or utcnow()
        cutoff = now - self._deleted_retention
        async with self._database.session() as session:
            rows = (
                await session.scalars(
                    select(Video)
                    .where(
                        Video.deleted_at.is_not(None),
                        Video.deleted_at < cutoff,
                        Video.next_check_at.is_(None),
                        or_(Video.lease_until.is_(None), Video.lease_until < now),
                        or_(*(getattr(Video, column).is_not(None) for column in _KEY_COLUMNS)),
                    )
                    .order_by(Video.deleted_at)
                    .limit(self._batch)
                )
            ).all()
        purged = 0
        for video in rows:
            if await self._purge(video, now):
                purged += 1
        if purged:
            log.info("purged deleted videos", count=purged)
        return purged

    async def _purge(self, video: Video, now: datetime) -> bool:
        keys = [key for column in _KEY_COLUMNS if (key := getattr(video, column))]
        for key in keys:
            if _belongs_to(key, video.id):
                # Objects first, row second: a crash in between leaves keys that the next
                # run deletes again (deleting what is gone is not an error).
                await self._storage.delete(key)
            else:
                # Archive and reference keys are named after their video; a key that is not
                # could be another video's, so it is forgotten but its object is left alone.
                log.warning("not deleting a key outside the video's own", video=video.id, key=key)
        metadata = {**video.metadata_, "purged_at": now.isoformat()}
        async with self._database.session() as session, session.begin():
            result = await session.execute(
                update(Video)
                .where(
                    and_(
                        Video.id == video.id,
                        # Fenced like an engine write: the row is exactly as it was read.
                        Video.lease_version == video.lease_version,
                        Video.next_check_at.is_(None),
                        Video.deleted_at.is_not(None),
                    )
                )
                .values(metadata_=metadata, **dict.fromkeys(_KEY_COLUMNS))
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))


def _stamp_of(key: str) -> datetime | None:
    """When `Storage.put_temporary` named `key`, or None for a name it did not make."""
    name = key.removeprefix(f"{TEMPORARY_PREFIX}/")
    try:
        return datetime.strptime(name.partition("-")[0], _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _belongs_to(key: str, video_id: str) -> bool:
    return key.startswith(f"videos/{video_id}/") or key == f"references/{video_id}"
