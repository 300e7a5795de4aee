"""Outgoing webhooks: `video.completed` / `video.failed` events signed per Standard Webhooks."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from standardwebhooks import Webhook

from reelforge.emulator.settings import EmulatorSettings

if TYPE_CHECKING:
    from reelforge.emulator.state import StateFile

log = logging.getLogger(__name__)

USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
_KEPT_DELIVERIES = 1000


def event_body(event_id: str, event_type: str, created_at: int, video_id: str) -> str:
    """The event exactly as OpenAI sends it: compact JSON, keys in its order, only `data.id`."""
    return json.dumps(
        {
            "object": "event",
            "id": event_id,
            "type": event_type,
            "created_at": created_at,
            "data": {"id": video_id},
        },
        separators=(",", ":"),
    )


@dataclass
class Delivery:
    """One event and every attempt to deliver it (for `GET /_emulator/webhooks`)."""

    webhook_id: str
    event_id: str
    type: str
    video_id: str
    body: str
    state: str = "pending"  # pending | delivered | failed | dropped
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "type": self.type,
            "video_id": self.video_id,
            "state": self.state,
            "attempts": list(self.attempts),
        }


class WebhookSender:
    """Sends events from the engine's loop, retrying on a bounded schedule."""

    def __init__(self, settings: EmulatorSettings, state: StateFile | None = None) -> None:
        self.settings = settings
        self.state = state
        self._deliveries: deque[Delivery] = deque(maxlen=_KEPT_DELIVERIES)
        self._lock = threading.Lock()
        if state is not None:
            self._deliveries.extend(state.deliveries(_KEPT_DELIVERIES))
        secret = settings.webhook_secret
        self._signer = Webhook(secret.get_secret_value()) if secret else None

    @property
    def enabled(self) -> bool:
        return self.settings.webhook_url is not None

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [delivery.to_json() for delivery in self._deliveries]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def unfinished(self) -> list[Delivery]:
        """Deliveries still being retried (those a restart interrupted)."""
        with self._lock:
            return [delivery for delivery in self._deliveries if delivery.state == "pending"]

    def _save(self, delivery: Delivery) -> None:
        if self.state is not None:
            self.state.save_delivery(delivery, keep=_KEPT_DELIVERIES)

    def prepare(self, event_type: str, video_id: str, created_at: int, *, drop: bool) -> Delivery:
        # OpenAI's webhook-id (`wh_`) is distinct from the event id (`evt_`); both stay the same
        # across retries so receivers can dedupe.
        event_id = f"evt_{secrets.token_hex(16)}"
        delivery = Delivery(
            webhook_id=f"wh_{secrets.token_hex(16)}",
            event_id=event_id,
            type=event_type,
            video_id=video_id,
            body=event_body(event_id, event_type, created_at, video_id),
            state="dropped" if drop else "pending",
        )
        with self._lock:
            self._deliveries.append(delivery)
        self._save(delivery)
        return delivery

    def headers(self, delivery: Delivery) -> dict[str, str]:
        now = datetime.now(UTC)  # the receiver checks it against its own clock (±300 s)
        headers = {
            "user-agent": USER_AGENT,
            "content-type": "application/json",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
        }
        if self._signer is not None:
            headers["webhook-signature"] = self._signer.sign(
                delivery.webhook_id, now, delivery.body
            )
        return headers

    async def deliver(self, delivery: Delivery) -> None:
        """Attempt now, then after each configured delay; stop at the first 2xx."""
        url = self.settings.webhook_url
        if url is None or delivery.state == "dropped":
            return
        delays = [0.0, *self.settings.webhook_retry_delays]
        done = len(delivery.attempts)  # after a restart, the attempts made before it
        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds)
        # Redirects count as failures, as OpenAI does not follow them.
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            for attempt, delay in enumerate(delays[done:], start=done + 1):
                if attempt == done + 1 and done:
                    # Resumed: the wait counts from the last attempt, before the restart.
                    last = datetime.fromisoformat(delivery.attempts[-1]["at"])
                    delay = max(0.0, delay - (datetime.now(UTC) - last).total_seconds())
                if delay:
                    await asyncio.sleep(delay)
                record: dict[str, Any] = {"attempt": attempt, "at": datetime.now(UTC).isoformat()}
                try:
                    response = await client.post(
                        url, content=delivery.body.encode(), headers=self.headers(delivery)
                    )
                except httpx.HTTPError as exc:
                    record["error"] = f"{type(exc).__name__}: {exc}"
                else:
                    record["status"] = response.status_code
                    if 200 <= response.status_code < 300:
                        delivery.attempts.append(record)
                        delivery.state = "delivered"
                        self._save(delivery)
                        return
                delivery.attempts.append(record)
                self._save(delivery)
        delivery.state = "failed"
        self._save(delivery)
        log.warning("emulator: webhook %s to %s failed after retries", delivery.webhook_id, url)
