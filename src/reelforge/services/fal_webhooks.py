"""fal's queue webhooks: check fal's ED25519 signature against its published keys, then nudge.

fal POSTs to the `fal_webhook` URL a submit named when a request ends, with four headers
(`X-Fal-Webhook-Request-Id`, `-User-Id`, `-Timestamp`, `-Signature`). The signature is ED25519
over `request_id \\n user_id \\n timestamp \\n hex(sha256(body))`, by one of the keys in fal's
JWKS; the timestamp must be within five minutes (docs/providers.md cites the pages).

Like every provider webhook, a verified one only makes the video's next check due now
(`InboundWebhooks.record`): the engine then asks fal's queue, and the lifecycle service makes
whatever change that answer calls for. Recorded once per request id, so fal's redeliveries
change nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import anyio
import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reelforge.db.models import Video
from reelforge.services.inbound import InboundWebhooks, Receipt, WebhookRejected

PROVIDER = "fal"
DEFAULT_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"
MAX_BODY_BYTES = 1024 * 1024  # the body carries the model's output (URLs, not media)
LEEWAY_SECONDS = 300
# fal asks for keys to be cached no longer than a day.
JWKS_LIFESPAN_SECONDS = 24 * 3600
# A signature no cached key verifies fetches the keys again (fal rotated them), at most this
# often, so forged deliveries cannot make us hammer fal's key endpoint.
JWKS_REFRESH_SECONDS = 60.0
JWKS_TIMEOUT_SECONDS = 10

REQUEST_ID = "x-fal-webhook-request-id"
USER_ID = "x-fal-webhook-user-id"
TIMESTAMP = "x-fal-webhook-timestamp"
SIGNATURE = "x-fal-webhook-signature"
# fal's request ids are UUIDs; nothing else may reach the LIKE that finds the video.
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,80}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")


class KeysUnavailable(Exception):
    """fal's key set could not be fetched: the delivery cannot be checked now (fal retries)."""


class FalWebhooks:
    """Receives fal's webhooks for the `fal` provider."""

    def __init__(
        self,
        inbound: InboundWebhooks,
        *,
        jwks_url: str = DEFAULT_JWKS_URL,
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        self._inbound = inbound
        self._leeway = leeway
        self._keys = jwt.PyJWKClient(
            jwks_url,
            cache_keys=False,
            cache_jwk_set=True,
            lifespan=JWKS_LIFESPAN_SECONDS,
            timeout=JWKS_TIMEOUT_SECONDS,
        )
        self._refreshed_at = -JWKS_REFRESH_SECONDS

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> Receipt:
        """Check and record one delivery; WebhookRejected (nothing recorded) if it is not a
        fresh delivery signed by fal, KeysUnavailable if fal's keys cannot be fetched."""
        request_id = _header(headers, REQUEST_ID, _REQUEST_ID, "a fal request id (a UUID)")
        user_id = _header(headers, USER_ID, re.compile(r"[!-~]{1,200}"), "printable ASCII")
        timestamp = _header(headers, TIMESTAMP, _TIMESTAMP, "whole Unix seconds")
        signature = _header(headers, SIGNATURE, _SIGNATURE, "128 hex digits (ED25519)")
        if abs(time.time() - int(timestamp)) > self._leeway:
            raise WebhookRejected(
                TIMESTAMP, f"is more than {self._leeway:.0f} s away from now (a replay?)"
            )
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected("body", f"must be at most {MAX_BODY_BYTES} bytes")
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join((request_id, user_id, timestamp, digest)).encode()
        await self._verify(bytes.fromhex(signature), message)
        status, error = _payload(body, request_id)
        data: dict[str, Any] = {"type": f"fal.{status.lower()}", "request_id": request_id}
        if error:
            data["error"] = error[:500]
        return await self._inbound.record(
            PROVIDER,
            webhook_id=request_id,
            event_type=data["type"][:80],
            provider_video_id=request_id,
            # Our upstream id for a fal video is `app|request id|size|seconds`.
            match=Video.provider_video_id.like(f"%|{request_id}|%"),
            data=data,
        )

    async def _verify(self, signature: bytes, message: bytes) -> None:
        for refresh in (False, True):
            if refresh and time.monotonic() - self._refreshed_at < JWKS_REFRESH_SECONDS:
                break
            for key in await self._ed25519_keys(refresh=refresh):
                try:
                    key.verify(signature, message)
                    return
                except InvalidSignature:
                    continue
        raise WebhookRejected(SIGNATURE, "does not verify with any of fal's published keys")

    async def _ed25519_keys(self, *, refresh: bool) -> list[Ed25519PublicKey]:
        try:
            # PyJWKClient fetches with urllib (blocking): off the event loop.
            keys = await anyio.to_thread.run_sync(self._keys.get_jwk_set, refresh)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
            raise KeysUnavailable(f"cannot fetch fal's webhook keys: {exc}") from exc
        if refresh:
            self._refreshed_at = time.monotonic()
        return [key.key for key in keys.keys if isinstance(key.key, Ed25519PublicKey)]


def _payload(body: bytes, request_id: str) -> tuple[str, str | None]:
    """fal's `status` (`OK` or `ERROR`) and `error`; the body names the signed request."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRejected("body", "is not valid JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("body", "must be a JSON object")
    if payload.get("request_id") not in (None, request_id):
        raise WebhookRejected("request_id", f"must match the {REQUEST_ID} header")
    status = payload.get("status")
    if status not in ("OK", "ERROR"):
        raise WebhookRejected("status", "must be 'OK' or 'ERROR'")
    error = payload.get("error")
    return status, error if isinstance(error, str) else None


def _header(headers: Mapping[str, str], name: str, shape: re.Pattern[str], what: str) -> str:
    value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None or not value.strip():
        raise WebhookRejected(name, "header is missing")
    if not shape.fullmatch(value):
        raise WebhookRejected(name, f"header must be {what}")
    return value
