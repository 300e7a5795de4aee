"""Outgoing webhooks: users' endpoints, events recorded with the state change, signed delivery.

An event is a `webhook_deliveries` row per subscribed endpoint, inserted by `emit` (or by
`defer_emit`, at the end of the job engine's batch) in the transaction that changes the video,
so an event exists exactly when its change committed. The `Deliverer` sends due rows later (the
job engine calls `deliver_due` on a timer): at least once, signed per Standard Webhooks,
retried with backoff, never the same attempt by two workers.

Unless the operator allows private addresses, endpoints go only to public addresses: a URL
written with a non-public host is refused when registered, and each delivery resolves the host
itself, refuses to send (for good) when any address is not public, and connects to the address
it checked, so a second DNS answer can't redirect the request into the operator's network.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import Any, cast

import anyio
import httpx
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks import Webhook

from reelforge.db.engine import Database
from reelforge.db.group import Batch
from reelforge.db.models import Video, WebhookDelivery, WebhookEndpoint
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.ids import new_id
from reelforge.domain.states import JobState
from reelforge.domain.videos import VideoView
from reelforge.domain.webhooks import (
    MAX_ATTEMPTS,
    MAX_DELIVERY_LIST,
    MAX_ENDPOINTS_PER_USER,
    PRIVATE_ADDRESSES_REFUSED,
    DeliveryStatus,
    DeliveryView,
    EndpointView,
    EventType,
    VideoSnapshot,
    check_delivery_status,
    check_description,
    check_event_types,
    check_url,
    event_payload,
    is_public_address,
    retry_delay,
)
from reelforge.logs import get_logger

log = get_logger("reelforge.webhooks")

USER_AGENT = "Reelforge-Webhooks/1.0"
SEND_TIMEOUT_SECONDS = 5.0
# A claimed delivery is due again after this long, so one whose worker died mid-send is retried;
# it must outlast a send (bounded by the timeout above).
IN_FLIGHT = timedelta(seconds=60)
_MAX_ERROR_LENGTH = 500

Resolve = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def pinned(url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """`url` aimed at `address`, with the headers and request extensions that keep its name.

    The Host header and, for https, the TLS server name (SNI and the certificate check) stay
    the registered host's, so the receiver sees the same request it would have by name.
    """
    headers = {"host": url.netloc.decode("ascii")}
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    return url.copy_with(host=address), headers, extensions


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# Built once: the engine emits on every completion, and building it cost more than running it.
_ENDPOINTS = cast(Table, WebhookEndpoint.__table__).c
_ENABLED_ENDPOINTS = select(_ENDPOINTS.id, _ENDPOINTS.user_id, _ENDPOINTS.event_types).where(
    _ENDPOINTS.user_id.in_(bindparam("owner_ids", expanding=True)), _ENDPOINTS.enabled.is_(True)
)
_ADD_DELIVERIES = insert(cast(Table, WebhookDelivery.__table__))


async def emit(
    connection: AsyncConnection,
    video: Video | VideoView,
    event_type: EventType | str,
    *,
    now: datetime | None = None,
) -> int:
    """Queue `event_type` about `video` for each enabled endpoint of its owner that wants it.

    Runs in the caller's transaction (from an ORM session, pass `await session.connection()`)
    and sends nothing: the rows are committed (or rolled back) with the caller's change.
    Returns how many deliveries were queued.
    """
    event = _Event(video.owner_id, _snapshot(video), EventType(event_type))
    return await _queue(connection, [event], now or utcnow())


def defer_emit(
    batch: Batch, video: Video, event_type: EventType, written: Mapping[str, Any]
) -> None:
    """`emit` about `video` as a write of `written` (values by attribute name) leaves it, at the
    end of the job engine's batch (db.group): there the events of all its writes take one query
    for their owners' endpoints."""
    after = VideoSnapshot(
        id=video.id,
        job_state=JobState(written.get("job_state", video.job_state)),
        progress=written.get("progress", video.progress),
        error_code=written.get("error_code", video.error_code),
        error_message=written.get("error_message", video.error_message),
    )
    batch.gather(_queue_gathered, _Event(video.owner_id, after, event_type))


@dataclass(frozen=True)
class _Event:
    owner_id: str
    video: VideoSnapshot
    kind: EventType


async def _queue_gathered(connection: AsyncConnection, events: list[Any]) -> None:
    await _queue(connection, events, utcnow())


async def _queue(connection: AsyncConnection, events: list[_Event], now: datetime) -> int:
    """A delivery of each event to each enabled endpoint of its owner that wants its type."""
    owners = list({event.owner_id for event in events})
    wants: dict[str, list[tuple[str, list[str]]]] = {}
    for endpoint in await connection.execute(_ENABLED_ENDPOINTS, {"owner_ids": owners}):
        wants.setdefault(endpoint.user_id, []).append((endpoint.id, endpoint.event_types))
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
        await connection.execute(_ADD_DELIVERIES, deliveries)
    return len(deliveries)


def _deliveries(event: _Event, endpoint_ids: list[str], now: datetime) -> list[dict[str, Any]]:
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


def _snapshot(video: Video | VideoView) -> VideoSnapshot:
    return VideoSnapshot(
        id=video.id,
        job_state=JobState(video.job_state),
        progress=video.progress,
        error_code=video.error_code,
        error_message=video.error_message,
    )


class Webhooks:
    """A user's endpoints and the deliveries made to them."""

    def __init__(self, database: Database, *, allow_private_addresses: bool = False) -> None:
        self._database = database
        self._allow_private_addresses = allow_private_addresses

    async def create_endpoint(
        self,
        account: Account,
        url: object,
        *,
        description: object = "",
        event_types: list[object] | None = None,
    ) -> tuple[EndpointView, str]:
        """A new endpoint, and its signing secret (returned only here)."""
        checked_url = check_url(url, allow_private_addresses=self._allow_private_addresses)
        checked_description = check_description(description)
        kinds = check_event_types(event_types)
        secret = new_secret()
        endpoint = WebhookEndpoint(
            id=new_id("whep"),
            user_id=account.id,
            url=checked_url,
            description=checked_description,
            secret=secret,
            event_types=[kind.value for kind in kinds],
            enabled=True,
            created_at=utcnow(),
        )
        async with self._database.session() as session, session.begin():
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(WebhookEndpoint.user_id == account.id)
            )
            if (count or 0) >= MAX_ENDPOINTS_PER_USER:
                raise ConflictError(
                    f"at most {MAX_ENDPOINTS_PER_USER} webhook endpoints per user; delete one first"
                )
            session.add(endpoint)
        return _endpoint_view(endpoint), secret

    async def endpoints(self, account: Account) -> list[EndpointView]:
        async with self._database.session() as session:
            rows = await session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.user_id == account.id)
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
            return [_endpoint_view(row) for row in rows]

    async def delete_endpoint(self, account: Account, endpoint_id: str) -> EndpointView:
        """Remove an endpoint and its deliveries; another user's endpoint is not found."""
        async with self._database.session() as session, session.begin():
            endpoint = await session.get(WebhookEndpoint, endpoint_id)
            if endpoint is None or endpoint.user_id != account.id:
                raise NotFoundError("webhook endpoint", endpoint_id)
            await session.delete(endpoint)
            return _endpoint_view(endpoint)

    async def deliveries(
        self,
        account: Account,
        *,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[DeliveryView]:
        """The caller's deliveries, newest first."""
        if not 1 <= limit <= MAX_DELIVERY_LIST:
            raise InputError("limit", f"must be 1 to {MAX_DELIVERY_LIST}")
        wanted = check_delivery_status(status)
        query = (
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookEndpoint.user_id == account.id)
        )
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        if wanted is not None:
            query = query.where(WebhookDelivery.status == wanted.value)
        query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        async with self._database.session() as session:
            rows = await session.scalars(query.limit(limit))
            return [_delivery_view(row) for row in rows]

    async def replay(self, account: Account, delivery_id: str) -> DeliveryView:
        """Queue a delivery to be sent again now, whatever became of it; attempts are kept."""
        async with self._database.session() as session, session.begin():
            now = utcnow()
            # The UPDATE comes first so SQLite takes its write lock before any read.
            owned = select(WebhookEndpoint.id).where(WebhookEndpoint.user_id == account.id)
            result = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.endpoint_id.in_(owned),
                )
                .values(status=DeliveryStatus.PENDING.value, next_attempt_at=now)
            )
            if not getattr(result, "rowcount", 0):
                raise NotFoundError("webhook delivery", delivery_id)
            delivery = await session.get(WebhookDelivery, delivery_id, populate_existing=True)
            assert delivery is not None
            return _delivery_view(delivery)


@dataclass(frozen=True)
class _Claimed:
    id: str
    attempts: int  # once taken, counting this attempt: the guard for recording its outcome
    url: str
    secret: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    permanent: bool = False  # retrying can't help: fail now rather than after every attempt

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Deliverer:
    """Sends due deliveries; any number of these may run against one database."""

    def __init__(
        self,
        database: Database,
        *,
        timeout: float = SEND_TIMEOUT_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        jitter: Callable[[], float] = random.random,
        allow_private_addresses: bool = False,
        resolver: Resolve = resolve,
    ) -> None:
        self._database = database
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._jitter = jitter
        self._allow_private_addresses = allow_private_addresses
        self._resolve = resolver

    async def deliver_due(self, now: datetime | None = None, limit: int = 50) -> int:
        """Claim up to `limit` due deliveries, send them concurrently, record each outcome.

        Returns how many were attempted. Never raises for a receiver's failure; call it
        periodically (it doesn't sleep or loop).
        """
        now = now or utcnow()
        claimed = await self._claim(now, limit)
        if not claimed:
            return 0
        async with (
            httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                # 3xx is a failure, as for OpenAI: following it would send the signed event to
                # a place the user never registered.
                follow_redirects=False,
                headers={"user-agent": USER_AGENT},
                # One connection per request: the pool keys connections by address, so a kept
                # TLS connection, checked for one endpoint's name, could otherwise carry a
                # request for another name on the same address.
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as client,
            anyio.create_task_group() as tasks,
        ):
            for delivery in claimed:
                tasks.start_soon(self._deliver, client, delivery, now)
        return len(claimed)

    async def _claim(self, now: datetime, limit: int) -> list[_Claimed]:
        due = await self._due(now, limit)
        return await self._take(due, now) if due else []

    async def _due(self, now: datetime, limit: int) -> list[_Claimed]:
        """Due deliveries as read, with the attempts they had (not yet ours)."""
        async with self._database.session() as session:
            rows = await session.execute(
                select(
                    WebhookDelivery.id,
                    WebhookDelivery.attempts,
                    WebhookEndpoint.url,
                    WebhookEndpoint.secret,
                    WebhookDelivery.payload,
                )
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookEndpoint.enabled.is_(True),
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
            return [_Claimed(*row) for row in rows]

    async def _take(self, due: list[_Claimed], now: datetime) -> list[_Claimed]:
        """Those of `due` this worker now owns, each with its attempts counted.

        Each UPDATE is guarded by the attempts we read: of two workers that read the same row,
        one changes it and the other's UPDATE matches nothing. The transaction's first statement
        writes, so SQLite takes its write lock there (waiting its busy timeout) instead of
        failing to upgrade a read snapshot; rows go in id order, so two PostgreSQL workers lock
        them in the same order and never deadlock.
        """
        taken = []
        async with self._database.session() as session, session.begin():
            for row in sorted(due, key=lambda row: row.id):
                result = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == row.id,
                        WebhookDelivery.status == DeliveryStatus.PENDING.value,
                        WebhookDelivery.attempts == row.attempts,
                    )
                    .values(attempts=row.attempts + 1, next_attempt_at=now + IN_FLIGHT)
                )
                if getattr(result, "rowcount", 0):
                    taken.append(replace(row, attempts=row.attempts + 1))
        return taken

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Claimed, now: datetime) -> None:
        outcome = await self._send(client, delivery)
        values: dict[str, Any] = {"last_status_code": outcome.status_code}
        if outcome.delivered:
            values |= {
                "status": DeliveryStatus.DELIVERED.value,
                "delivered_at": utcnow(),
                "next_attempt_at": None,
                "last_error": None,
            }
        elif outcome.permanent or delivery.attempts >= self._max_attempts:
            if outcome.permanent:
                log.warning("webhook delivery refused", delivery=delivery.id, reason=outcome.error)
            values |= {
                "status": DeliveryStatus.FAILED.value,
                "next_attempt_at": None,
                "last_error": outcome.error,
            }
        else:
            delay = retry_delay(delivery.attempts, self._jitter())
            values |= {"next_attempt_at": now + delay, "last_error": outcome.error}
        async with self._database.session() as session, session.begin():
            # Guarded by our claim: if the row was claimed again meanwhile (our send outlived
            # IN_FLIGHT), the later attempt's outcome is the one that counts.
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery.id,
                    WebhookDelivery.attempts == delivery.attempts,
                )
                .values(**values)
            )

    async def _send(self, client: httpx.AsyncClient, delivery: _Claimed) -> _Outcome:
        body = json.dumps(delivery.payload, separators=(",", ":"))
        sent_at = utcnow()  # the receiver checks this against its own clock
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(delivery.secret).sign(delivery.id, sent_at, body),
        }
        try:
            # httpx's timeout is per read; this bounds the whole exchange (resolving included),
            # so a slow resolver or a receiver trickling bytes can't hold the delivery past
            # IN_FLIGHT.
            with anyio.fail_after(self._timeout):
                status = await self._post(client, delivery, body.encode(), headers)
        except _Refused as refused:
            return _Outcome(None, _clip(refused.reason), permanent=True)
        except TimeoutError:
            return _Outcome(None, f"timed out after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return _Outcome(None, _clip(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # one bad endpoint must not stop the others' deliveries
            log.warning("webhook delivery crashed", delivery=delivery.id, exc_info=True)
            return _Outcome(None, _clip(f"{type(exc).__name__}: {exc}"))
        if 200 <= status < 300:
            return _Outcome(status, None)
        if 300 <= status < 400:
            return _Outcome(status, f"HTTP {status}: redirects are not followed")
        return _Outcome(status, f"HTTP {status}")

    async def _post(
        self, client: httpx.AsyncClient, delivery: _Claimed, body: bytes, headers: dict[str, str]
    ) -> int:
        """The receiver's status code, from the first address that takes the connection."""
        url = httpx.URL(delivery.url)
        if self._allow_private_addresses:
            return await _post_to(client, url, body, headers)
        addresses = await self._public_addresses(url)
        for address in addresses[:-1]:
            try:
                return await _post_to(client, url, body, headers, address=address)
            except httpx.ConnectError:
                continue  # nothing was sent: the next address may answer (IPv6 vs IPv4)
        return await _post_to(client, url, body, headers, address=addresses[-1])

    async def _public_addresses(self, url: httpx.URL) -> list[str]:
        """Where `url`'s host resolves, all public, or `_Refused`.

        Every address is checked, not just the one used: a name that answers with a private
        address among public ones is pointed at the operator's network on purpose.
        """
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:  # socket.gaierror: DNS may answer later, so this is retried
            raise httpx.ConnectError(f"could not resolve {host}: {exc}") from None
        if not addresses:
            raise httpx.ConnectError(f"could not resolve {host}: no addresses")
        private = [a for a in addresses if not is_public_address(ip_address(a))]
        if private:
            raise _Refused(
                f"refused: {host} resolves to {', '.join(private)}; the endpoint "
                f"{PRIVATE_ADDRESSES_REFUSED}"
            )
        return addresses


class _Refused(Exception):
    """The endpoint's host resolved to an address events may not be sent to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _post_to(
    client: httpx.AsyncClient,
    url: httpx.URL,
    body: bytes,
    headers: dict[str, str],
    *,
    address: str | None = None,
) -> int:
    extensions: dict[str, Any] = {}
    if address is not None:
        url, name_headers, extensions = pinned(url, address)
        headers = headers | name_headers
    # Streamed and never read: only the status matters, whatever the body's size.
    async with client.stream(
        "POST", url, content=body, headers=headers, extensions=extensions
    ) as response:
        return response.status_code


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_LENGTH else text[: _MAX_ERROR_LENGTH - 1] + "…"


def _endpoint_view(endpoint: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=endpoint.id,
        user_id=endpoint.user_id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
    )


def _delivery_view(delivery: WebhookDelivery) -> DeliveryView:
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
