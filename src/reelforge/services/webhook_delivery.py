"""Sending outgoing webhooks: due deliveries taken, signed per Standard Webhooks, and posted.

At least once, retried with backoff, never the same attempt by two workers. Unless the operator
allows private addresses, endpoints go only to public addresses: a URL written with a non-public
host is refused when registered, and each delivery resolves the host itself, refuses to send
(for good) when any address is not public, and connects to the address it checked, so a second
DNS answer can't redirect the request into the operator's network.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import Any

import anyio
import httpx
from standardwebhooks import Webhook

from reelforge.db import webhooks as queries
from reelforge.db.engine import Database
from reelforge.db.webhooks import Due, Outcome
from reelforge.domain.clock import utcnow
from reelforge.domain.webhooks import (
    MAX_ATTEMPTS,
    PRIVATE_ADDRESSES_REFUSED,
    DeliveryStatus,
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


@dataclass(frozen=True)
class _Sent:
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

    async def _claim(self, now: datetime, limit: int) -> list[Due]:
        due = await queries.due_deliveries(self._database, now, limit)
        return await queries.take(self._database, due, until=now + IN_FLIGHT) if due else []

    async def _deliver(self, client: httpx.AsyncClient, delivery: Due, now: datetime) -> None:
        await queries.record(
            self._database,
            delivery,
            self._judged(await self._send(client, delivery), delivery, now),
        )

    def _judged(self, sent: _Sent, delivery: Due, now: datetime) -> Outcome:
        """What to record of an attempt: delivered, failed for good, or due again later."""
        if sent.delivered:
            return Outcome(DeliveryStatus.DELIVERED, sent.status_code, None, None, utcnow())
        if sent.permanent or delivery.attempts >= self._max_attempts:
            if sent.permanent:
                log.warning("webhook delivery refused", delivery=delivery.id, reason=sent.error)
            return Outcome(DeliveryStatus.FAILED, sent.status_code, sent.error, None)
        delay = retry_delay(delivery.attempts, self._jitter())
        return Outcome(DeliveryStatus.PENDING, sent.status_code, sent.error, now + delay)

    async def _send(self, client: httpx.AsyncClient, delivery: Due) -> _Sent:
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
            return _Sent(None, _clip(refused.reason), permanent=True)
        except TimeoutError:
            return _Sent(None, f"timed out after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return _Sent(None, _clip(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # one bad endpoint must not stop the others' deliveries
            log.warning("webhook delivery crashed", delivery=delivery.id, exc_info=True)
            return _Sent(None, _clip(f"{type(exc).__name__}: {exc}"))
        if 200 <= status < 300:
            return _Sent(status, None)
        if 300 <= status < 400:
            return _Sent(status, f"HTTP {status}: redirects are not followed")
        return _Sent(status, f"HTTP {status}")

    async def _post(
        self, client: httpx.AsyncClient, delivery: Due, body: bytes, headers: dict[str, str]
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
