"""Outgoing webhooks as rules: event types, endpoint checks (which addresses may receive events),
event bodies, the retry schedule."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import Any
from urllib.parse import urlsplit

from reelforge.domain.errors import InputError
from reelforge.domain.states import JobState

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
MAX_ENDPOINTS_PER_USER = 20
MAX_DELIVERY_LIST = 100

# Retries: 10 s, 20 s, 40 s … doubling up to an hour, with jitter so a receiver that comes back
# isn't hit by every queued delivery at the same second. Eight attempts span about 40 minutes;
# after that the delivery is `failed` and the user can replay it.
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=1)


class EventType(StrEnum):
    VIDEO_CREATED = "video.created"
    VIDEO_PROGRESS = "video.progress"
    VIDEO_COMPLETED = "video.completed"
    VIDEO_FAILED = "video.failed"
    VIDEO_CANCELLED = "video.cancelled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


ALL_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
_EVENT_TYPE_NAMES = frozenset(kind.value for kind in EventType)


IPAddress = IPv4Address | IPv6Address

PRIVATE_ADDRESSES_REFUSED = (
    "must be a public http(s) address; private, loopback and link-local addresses are refused "
    "unless REELFORGE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is set"
)

# RFC 6052's well-known NAT64 prefix: DNS64 resolvers on IPv6-only networks answer it for every
# IPv4-only host, so it is judged by the IPv4 address it carries rather than refused outright.
_NAT64 = IPv6Network("64:ff9b::/96")
# What inet_aton reads as IPv4 although `ip_address` doesn't: 127.1, 2130706433, 0x7f.0.0.1 …
# The resolver (and so the HTTP client) accepts these forms, so registration must see through them.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")


def is_public_address(address: IPAddress) -> bool:
    """Whether events may be sent to `address`: globally routable unicast.

    Loopback, private, shared (CGNAT), link-local, multicast, reserved, unspecified and
    documentation addresses are not, nor an IPv6 address that carries one of those IPv4
    addresses (IPv4-mapped, 6to4, NAT64), which reaches the same host.
    """
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if address in _NAT64:
            return is_public_address(IPv4Address(int(address) & 0xFFFFFFFF))
    # `is_global` alone lets multicast (224.0.1.0/24, ff0e::/16) and, on some Python versions,
    # reserved ranges through.
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
    )


def literal_address(host: str) -> IPAddress | None:
    """The address `host` names without DNS (an IP literal, brackets optional, or a numeric
    form the resolver reads as IPv4), or None for a host name."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ip_address(name)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(name):
        try:
            return IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def is_local_name(host: str) -> bool:
    """`localhost` and names under it, which resolvers answer with loopback (RFC 6761)."""
    name = host.strip().lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def is_private_host(host: str) -> bool:
    """Whether `host`, as written, names a non-public address: a literal one or `localhost`.

    Other names are judged only when delivering, by what they resolve to then: DNS answers
    change, so a check at registration would prove nothing.
    """
    if is_local_name(host):
        return True
    address = literal_address(host)
    return address is not None and not is_public_address(address)


def check_url(url: object, *, allow_private_addresses: bool = False) -> str:
    """An absolute http(s) URL with a host, at most 2048 characters.

    Unless `allow_private_addresses`, the host may not be written as a non-public address
    (`is_private_host`).
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError("url", "is required: an http:// or https:// URL")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InputError("url", f"must be at most {MAX_URL_LENGTH} characters (got {len(url)})")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise InputError("url", "must be ASCII without spaces (percent-encode anything else)")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise InputError("url", f"is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InputError("url", "must start with http:// or https://")
    if not parts.hostname:
        raise InputError("url", "must name a host")
    if port == 0:
        raise InputError("url", "port must be 1 to 65535")
    if not allow_private_addresses and is_private_host(parts.hostname):
        raise InputError("url", f"{PRIVATE_ADDRESSES_REFUSED} (got host {parts.hostname})")
    return url


def check_description(description: object) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InputError("description", "must be a string")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InputError("description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters")
    return description.strip()


def check_event_types(event_types: Sequence[object] | None) -> list[EventType]:
    """The subscribed types, in the catalog's order; None means all of them."""
    allowed = ", ".join(ALL_EVENT_TYPES)
    if event_types is None:
        return list(ALL_EVENT_TYPES)
    if not event_types:
        raise InputError("event_types", f"must name at least one of {allowed}")
    chosen = set()
    for value in event_types:
        if not isinstance(value, str) or value not in _EVENT_TYPE_NAMES:
            raise InputError("event_types", f"{value!r} is not one of {allowed}")
        chosen.add(EventType(value))
    return [kind for kind in ALL_EVENT_TYPES if kind in chosen]


def check_delivery_status(status: str | None) -> DeliveryStatus | None:
    if status is None:
        return None
    try:
        return DeliveryStatus(status)
    except ValueError:
        allowed = ", ".join(DeliveryStatus)
        raise InputError("status", f"must be one of {allowed}") from None


def retry_delay(attempts: int, jitter: float) -> timedelta:
    """How long to wait after `attempts` failed attempts; `jitter` is uniform in [0, 1).

    10 s * 2^(attempts-1), capped at an hour, then spread over ±25 % so the delay is never
    below 7.5 s (longer than a send may take).
    """
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")
    exponent = min(attempts - 1, 20)  # 2^20 * 10 s is far past the cap; avoids huge ints
    base = min(FIRST_RETRY * (2**exponent), MAX_RETRY)
    spread: timedelta = base * (0.75 + jitter / 2)
    return spread


@dataclass(frozen=True)
class VideoSnapshot:
    """What an event says about its video when it happens."""

    id: str
    job_state: JobState
    progress: int
    error_code: str | None
    error_message: str | None


def event_payload(
    event_id: str, event_type: EventType, created_at: datetime, video: VideoSnapshot
) -> dict[str, Any]:
    """OpenAI's event shape (key order `object`, `id`, `type`, `created_at`, `data`).

    OpenAI's `data` holds only the video id; ours adds the public status and progress (and the
    error when it failed), so a receiver that only needs those can skip a `GET` back.
    """
    data: dict[str, Any] = {
        "id": video.id,
        "object": "video",
        "status": video.job_state.public_status.value,
        "progress": video.progress,
    }
    if video.error_code or video.error_message:
        data["error"] = {"code": video.error_code, "message": video.error_message}
    return {
        "object": "event",
        "id": event_id,
        "type": event_type.value,
        "created_at": int(created_at.timestamp()),
        "data": data,
    }


@dataclass(frozen=True)
class EndpointView:
    id: str
    user_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    video_id: str | None
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
