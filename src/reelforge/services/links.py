"""Short-lived signed file URLs: the URL is the credential, as an S3 presigned URL is."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import Signer

from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import Variant
from reelforge.services.archive import archive_key

FILES_PREFIX = "/api/files"
# Expiry is rounded up to this step, so every URL for a file made within one step is the same
# URL: a browser (or a CDN) caches it, and the gallery's images are not fetched again per page.
EXPIRY_STEP = timedelta(minutes=10)
_MAX_EXPIRES_DIGITS = 12
# URLs held signed: a bound on memory (about 200 bytes each), not on correctness.
SIGNED_URLS_KEPT = 8192


class LinkRefused(Exception):
    """A signed URL that must not be honoured; `field` names the query parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class SignedFile:
    """What a verified URL grants: one archived variant of one video, until `expires`."""

    video_id: str
    variant: Variant
    expires: int

    @property
    def key(self) -> str:
        return archive_key(self.video_id, self.variant)

    @property
    def filename(self) -> str:
        return f"{self.video_id}.{self.variant.extension}"


class FileLinks:
    """Signs and checks `/api/files/{video_id}/{variant}?expires=…&signature=…`.

    Whoever holds such a URL may read that one file until it expires, with no database or
    credential lookup: what a video player's Range requests and a gallery's thumbnails need.
    Like a presigned URL it is not revoked early; the TTL bounds a leaked one.
    """

    def __init__(self, secret: str, ttl: timedelta) -> None:
        # The salt keeps these signatures apart from anything else signed with the secret key.
        salted = Signer(secret, salt="reelforge.files", sep="~", digest_method=hashlib.sha256)
        # Its key derived once, not again for every URL checked (the same signatures).
        self._signer = Signer(
            salted.derive_key(), sep="~", digest_method=hashlib.sha256, key_derivation="none"
        )
        self._ttl = ttl
        # Within one expiry step a file's URL is the same URL (that is what the step is for), so
        # it is signed once, not on every read of the video that lists it.
        self._signed = functools.lru_cache(maxsize=SIGNED_URLS_KEPT)(self._sign)

    def url(self, video_id: str, variant: Variant, now: datetime | None = None) -> str:
        moment = (now or utcnow()) + self._ttl
        step = int(EXPIRY_STEP.total_seconds())
        expires = -(-int(moment.timestamp()) // step) * step
        return self._signed(video_id, variant, expires)

    def _sign(self, video_id: str, variant: Variant, expires: int) -> str:
        path = f"{FILES_PREFIX}/{video_id}/{variant.value}"
        signature = self._signer.get_signature(_message(path, expires)).decode()
        return f"{path}?expires={expires}&signature={signature}"

    def verify(
        self,
        video_id: str,
        variant: Variant,
        expires: str | None,
        signature: str | None,
        now: datetime | None = None,
    ) -> SignedFile:
        """The file a URL grants, or LinkRefused naming `expires` or `signature`."""
        if not expires or not expires.isascii() or not expires.isdigit():
            raise LinkRefused("expires", "must be the Unix time the URL was signed to expire at")
        if len(expires) > _MAX_EXPIRES_DIGITS:
            raise LinkRefused("expires", "is not a time this server signs")
        if not signature:
            raise LinkRefused("signature", "is required: ask the API for a fresh file URL")
        path = f"{FILES_PREFIX}/{video_id}/{variant.value}"
        if not self._signer.verify_signature(_message(path, int(expires)), signature):
            raise LinkRefused("signature", "does not match this URL: ask the API for a fresh one")
        if int(expires) <= (now or utcnow()).timestamp():
            raise LinkRefused("expires", "the URL has expired: ask the API for a fresh one")
        return SignedFile(video_id=video_id, variant=variant, expires=int(expires))


def _message(path: str, expires: int) -> str:
    return f"{path}?expires={expires}"
