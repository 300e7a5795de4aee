"""Queries for outgoing webhooks: users' endpoints, and the deliveries of events to them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db.engine import Database
from reelforge.db.models import WebhookDelivery, WebhookEndpoint
from reelforge.domain.webhooks import DeliveryStatus, DeliveryView, EndpointView

_ENDPOINTS = cast(Table, WebhookEndpoint.__table__).c
_ENABLED_ENDPOINTS = select(_ENDPOINTS.id, _ENDPOINTS.user_id, _ENDPOINTS.event_types).where(
    _ENDPOINTS.user_id.in_(bindparam("owner_ids", expanding=True)), _ENDPOINTS.enabled.is_(True)
)
_ADD_DELIVERIES = insert(cast(Table, WebhookDelivery.__table__))
_PENDING = DeliveryStatus.PENDING.value


async def enabled_endpoints(
    connection: AsyncConnection, owner_ids: list[str]
) -> dict[str, list[tuple[str, list[str]]]]:
    """Each owner's enabled endpoints, as (endpoint id, event types wanted)."""
    wants: dict[str, list[tuple[str, list[str]]]] = {}
    for endpoint in await connection.execute(_ENABLED_ENDPOINTS, {"owner_ids": owner_ids}):
        wants.setdefault(endpoint.user_id, []).append((endpoint.id, endpoint.event_types))
    return wants


async def add_deliveries(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await connection.execute(_ADD_DELIVERIES, list(rows))


@dataclass(frozen=True)
class Due:
    """A delivery to send: `attempts` counts this one once it is taken."""

    id: str
    attempts: int
    url: str
    secret: str
    payload: dict[str, Any]


async def due_deliveries(database: Database, now: datetime, limit: int) -> list[Due]:
    """Pending deliveries to enabled endpoints whose next attempt is due, as read."""
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookDelivery.payload,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    async with database.reading() as connection:
        return [Due(*row) for row in await connection.execute(query)]


async def take(database: Database, due: list[Due], *, until: datetime) -> list[Due]:
    """Those of `due` this worker now owns, each with its attempt counted and held `until`.

    Each UPDATE is guarded by the attempts read: of two workers that read the same row, one
    changes it and the other's UPDATE matches nothing. The transaction's first statement
    writes, so SQLite takes its write lock there; rows go in id order, so two PostgreSQL
    workers lock them in the same order and never deadlock.
    """
    taken = []
    async with database.transaction() as connection:
        for row in sorted(due, key=lambda row: row.id):
            result = await connection.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == row.id,
                    WebhookDelivery.status == _PENDING,
                    WebhookDelivery.attempts == row.attempts,
                )
                .values(attempts=row.attempts + 1, next_attempt_at=until)
            )
            if result.rowcount:
                taken.append(Due(row.id, row.attempts + 1, row.url, row.secret, row.payload))
    return taken


@dataclass(frozen=True)
class Outcome:
    """What became of an attempt, as recorded on its delivery."""

    status: DeliveryStatus
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None = None


async def record(database: Database, delivery: Due, outcome: Outcome) -> None:
    """Record `outcome`, unless the delivery was taken again meanwhile (then the later attempt's
    outcome is the one that counts)."""
    async with database.transaction() as connection:
        await connection.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.attempts == delivery.attempts,
            )
            .values(
                status=outcome.status.value,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
                next_attempt_at=outcome.next_attempt_at,
                delivered_at=outcome.delivered_at,
            )
        )


async def add_endpoint(database: Database, endpoint: WebhookEndpoint, *, limit: int) -> bool:
    """Add `endpoint` unless its user has `limit` endpoints already."""
    async with database.session() as session, session.begin():
        count = await session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.user_id == endpoint.user_id)
        )
        if (count or 0) >= limit:
            return False
        session.add(endpoint)
    return True


async def endpoints_of(database: Database, user_id: str) -> list[EndpointView]:
    async with database.session() as session:
        rows = await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.user_id == user_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return [endpoint_view(row) for row in rows]


async def delete_endpoint(
    database: Database, user_id: str, endpoint_id: str
) -> EndpointView | None:
    """Remove the user's endpoint and its deliveries; None when the user has no such endpoint."""
    async with database.session() as session, session.begin():
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.user_id != user_id:
            return None
        await session.delete(endpoint)
        return endpoint_view(endpoint)


async def deliveries_of(
    database: Database,
    user_id: str,
    *,
    endpoint_id: str | None,
    status: DeliveryStatus | None,
    limit: int,
) -> list[DeliveryView]:
    """The user's deliveries, newest first."""
    query = (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookEndpoint.user_id == user_id)
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    async with database.session() as session:
        return [delivery_view(row) for row in await session.scalars(query.limit(limit))]


async def replay(
    database: Database, user_id: str, delivery_id: str, now: datetime
) -> DeliveryView | None:
    """The user's delivery made due again now; None when the user has no such delivery."""
    async with database.session() as session, session.begin():
        # The UPDATE comes first so SQLite takes its write lock before any read.
        owned = select(WebhookEndpoint.id).where(WebhookEndpoint.user_id == user_id)
        result = await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id.in_(owned))
            .values(status=_PENDING, next_attempt_at=now)
        )
        if not getattr(result, "rowcount", 0):
            return None
        delivery = await session.get(WebhookDelivery, delivery_id, populate_existing=True)
        return delivery_view(delivery) if delivery is not None else None


def endpoint_view(endpoint: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=endpoint.id,
        user_id=endpoint.user_id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
    )


def delivery_view(delivery: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        video_id=delivery.video_id,
        payload=dict(delivery.payload),
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )
