"""Incoming provider webhooks: verify (Standard Webhooks), dedupe by `webhook-id`, nudge the job.

A webhook is only a hint. It never changes a video's state: it makes the video's next check due
now and wakes the engines (a WAKE notice on the bus), which ask the provider (the truth).
Duplicates, replays within the window and events out of order are therefore harmless, and a
forged one could at worst cause an early poll, which the signature check rules out anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from reelforge.bus import Bus, Notice, Topic
from reelforge.db.engine import Database
from reelforge.db.models import Video, VideoEvent, WebhookReceipt
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import InputError
from reelforge.domain.states import TERMINAL_STATES
from reelforge.domain.videos import EventKind

MAX_BODY_BYTES = 64 * 1024  # an event is a few hundred bytes
_MAX_WEBHOOK_ID = 255  # webhook_receipts.webhook_id
_MAX_EVENT_TYPE = 80  # webhook_receipts.event_type
_MAX_VIDEO_ID = 128  # videos.provider_video_id
_MAX_SIGNATURE = 4096  # room for a few rotated signatures
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_TERMINAL = [state.value for state in TERMINAL_STATES]


class WebhooksNotConfigured(Exception):
    """No signing secret is set, so no webhook can be trusted."""


class WebhookRejected(InputError):
    """The request is not a valid, signed, fresh event; `field` names what is wrong."""


@dataclass(frozen=True)
class Receipt:
    duplicate: bool
    nudged_video_id: str | None = None


@dataclass(frozen=True)
class _Event:
    webhook_id: str
    type: str
    event_id: str | None
    provider_video_id: str | None


class InboundWebhooks:
    """Receives one provider's webhooks; a nudge is told on `bus`, which wakes the engines."""

    def __init__(self, database: Database, bus: Bus, *, provider: str, secret: str | None) -> None:
        self._database = database
        self._bus = bus
        self.provider = provider
        self._verifier = Webhook(secret) if secret else None

    @property
    def configured(self) -> bool:
        return self._verifier is not None

    async def receive(self, provider: str, body: bytes, headers: Mapping[str, str]) -> Receipt:
        """Check and record one delivery; raises WebhookRejected (nothing recorded) if invalid.

        A `webhook-id` already seen is acknowledged and changes nothing.
        """
        if self._verifier is None:
            raise WebhooksNotConfigured
        if provider != self.provider:
            raise WebhookRejected(
                "provider",
                f"unknown provider {provider[:40]!r}; this server receives webhooks for "
                f"{self.provider!r}",
            )
        event = _event(self._verifier, body, headers)
        match = None
        if event.provider_video_id is not None:
            match = Video.provider_video_id == event.provider_video_id
        data = {"type": event.type, "webhook_id": event.webhook_id}
        if event.event_id is not None:
            data["event_id"] = event.event_id
        return await self.record(
            provider,
            webhook_id=event.webhook_id,
            event_type=event.type,
            provider_video_id=event.provider_video_id,
            match=match,
            data=data,
        )

    async def record(
        self,
        provider: str,
        *,
        webhook_id: str,
        event_type: str,
        provider_video_id: str | None,
        match: ColumnElement[bool] | None,
        data: dict[str, Any],
    ) -> Receipt:
        """Record one verified delivery (once per `webhook_id`) and nudge the running video of
        `provider` that `match` picks, if any; any verifier's deliveries come through here."""
        now = utcnow()
        try:
            async with self._database.session() as session, session.begin():
                # Inserted first: the unique (provider, webhook_id) makes a redelivery fail
                # here, before it touches anything, even when two copies arrive at once.
                session.add(
                    WebhookReceipt(
                        provider=provider,
                        webhook_id=webhook_id,
                        event_type=event_type,
                        provider_video_id=provider_video_id,
                        received_at=now,
                    )
                )
                await session.flush()
                video_id = None
                if match is not None:
                    video_id = await _nudge(session, provider, match, data, now)
        except IntegrityError:
            return Receipt(duplicate=True)
        if video_id is not None:
            # The check is already due in the database: the notice only makes it sooner.
            await self._bus.publish(Notice(Topic.WAKE, video_id))
        return Receipt(duplicate=False, nudged_video_id=video_id)


async def _nudge(
    session: AsyncSession,
    provider: str,
    match: ColumnElement[bool],
    data: dict[str, Any],
    now: datetime,
) -> str | None:
    """Make the video's next check due now, if it is ours and still running."""
    video_id = await session.scalar(
        select(Video.id).where(Video.provider == provider, match, Video.job_state.not_in(_TERMINAL))
    )
    if video_id is None:
        return None
    result = await session.execute(
        update(Video)
        .where(Video.id == video_id, Video.job_state.not_in(_TERMINAL))
        .values(next_check_at=now)
    )
    if not getattr(result, "rowcount", 0):
        return None
    session.add(
        VideoEvent(
            video_id=video_id,
            kind=EventKind.WEBHOOK_RECEIVED,
            actor=f"webhook:{provider}"[:80],
            data={"provider": provider, **data},
            created_at=now,
        )
    )
    return str(video_id)


def _event(verifier: Webhook, body: bytes, headers: Mapping[str, str]) -> _Event:
    """The verified event, or WebhookRejected saying why not."""
    webhook_id = _header(headers, "webhook-id", _MAX_WEBHOOK_ID)
    timestamp = _header(headers, "webhook-timestamp", 12)
    signature = _header(headers, "webhook-signature", _MAX_SIGNATURE)
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookRejected("webhook-timestamp", "must be whole Unix seconds")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected("body", f"must be at most {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("body", "must be UTF-8 JSON") from None
    try:
        # The library checks the ±5 minute window and every `v1,` signature in the header.
        # Parsing is ours (json_parse=False) so a bad body isn't reported as a bad signature.
        verifier.verify(
            text,
            {
                "webhook-id": webhook_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": signature,
            },
            json_parse=False,
        )
    except WebhookVerificationError as exc:
        raise WebhookRejected("webhook-signature", f"verification failed: {exc}") from None
    except ValueError:  # a signature header the library can't even split or base64-decode
        raise WebhookRejected("webhook-signature", "is malformed: expected 'v1,<base64>'") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookRejected("body", "is not valid JSON") from None
    return _parse(webhook_id, payload)


def _parse(webhook_id: str, payload: object) -> _Event:
    if not isinstance(payload, dict):
        raise WebhookRejected("body", "must be a JSON object (an event)")
    kind = payload.get("type")
    if not isinstance(kind, str) or not 1 <= len(kind) <= _MAX_EVENT_TYPE:
        raise WebhookRejected("type", f"must be a string of 1 to {_MAX_EVENT_TYPE} characters")
    event_id = payload.get("id")
    event = _Event(
        webhook_id=webhook_id,
        type=kind,
        event_id=event_id if isinstance(event_id, str) and len(event_id) <= 255 else None,
        provider_video_id=None,
    )
    if not kind.startswith("video."):
        return event  # acknowledged and recorded; nothing of ours to check
    data = payload.get("data")
    video_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(video_id, str) or not 1 <= len(video_id) <= _MAX_VIDEO_ID:
        raise WebhookRejected("data.id", "a video event must carry the provider's video id")
    return _Event(webhook_id, kind, event.event_id, video_id)


def _header(headers: Mapping[str, str], name: str, max_length: int) -> str:
    value = None
    for key, candidate in headers.items():
        if key.lower() == name:
            value = candidate
            break
    if value is None or not value.strip():
        raise WebhookRejected(name, "header is missing")
    if len(value) > max_length:
        raise WebhookRejected(name, f"header must be at most {max_length} characters")
    if not value.isascii() or not value.isprintable():
        raise WebhookRejected(name, "header must be printable ASCII")
    return value
