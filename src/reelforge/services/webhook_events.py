"""Outgoing webhook events: queued for each endpoint that wants them, in the change's unit of work.

An event is a `webhook_deliveries` row per subscribed endpoint, inserted in the transaction that
makes the change, so an event exists exactly when its change committed; the events of a whole
batch take one read of their owners' endpoints. `webhook_delivery` sends them later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db import webhooks as queries
from reelforge.db.group import Batch
from reelforge.domain.clock import utcnow
from reelforge.domain.ids import new_id
from reelforge.domain.webhooks import DeliveryStatus, EventType, VideoSnapshot, event_payload


@dataclass(frozen=True)
class Event:
    owner_id: str
    video: VideoSnapshot
    kind: EventType


def queue(batch: Batch, event: Event) -> None:
    """Deliver `event` to each enabled endpoint of its owner that wants its type, once the
    batch commits."""
    batch.gather(_queue, event)


async def _queue(connection: AsyncConnection, events: list[Any]) -> None:
    now = utcnow()
    wants = await queries.enabled_endpoints(connection, list({e.owner_id for e in events}))
    deliveries = []
    for event in events:
        wanted = [
            endpoint_id
            for endpoint_id, kinds in wants.get(event.owner_id, [])
            if event.kind.value in kinds
        ]
        if wanted:
            deliveries += _deliveries(event, wanted, now)
    if deliveries:
        await queries.add_deliveries(connection, deliveries)


def _deliveries(event: Event, endpoint_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    event_id = new_id("evt")
    payload = event_payload(event_id, event.kind, now, event.video)
    return [
        {
            # Doubles as the `webhook-id` header: the same across retries, so receivers can
            # dedupe, and distinct from the event id, as OpenAI's `wh_…` ids are.
            "id": new_id("wh"),
            "endpoint_id": endpoint_id,
            "event_id": event_id,
            "event_type": event.kind.value,
            "video_id": event.video.id,
            "payload": payload,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for endpoint_id in endpoint_ids
    ]
