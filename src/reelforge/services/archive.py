"""Copying a finished video's outputs from the provider into our storage, checked."""

from __future__ import annotations

from reelforge.domain.clock import utcnow
from reelforge.domain.records import VideoRecord
from reelforge.domain.schedule import EXPIRY_MARGIN
from reelforge.domain.upstream import ProviderError, UpstreamVideo, Variant
from reelforge.domain.videos import ArchivedObject
from reelforge.logs import get_logger
from reelforge.providers.base import Provider
from reelforge.storage import IntegrityError, Storage, StorageError, StoredObject

log = get_logger("reelforge.archive")


def archive_key(video_id: str, variant: Variant) -> str:
    return f"videos/{video_id}/{variant.value}.{variant.extension}"


async def download_variant(
    provider: Provider, storage: Storage, upstream_id: str, variant: Variant
) -> StoredObject:
    """Stream one output into a temporary object and check its size against upstream's.

    The caller commits it to `archive_key` while it still holds the video's lease. A crash
    before that leaves only a temporary object, which housekeeping removes; the archive key
    only ever holds a whole, checked file.
    """
    async with provider.stream_content(upstream_id, variant) as content:
        temporary = await storage.put_temporary(content.aiter_bytes())
        if content.content_length is not None and temporary.size != content.content_length:
            await storage.delete(temporary.key)
            raise IntegrityError(
                f"{variant} of {upstream_id}: got {temporary.size} of "
                f"{content.content_length} bytes"
            )
    return temporary


async def download_all(
    provider: Provider, storage: Storage, upstream: UpstreamVideo
) -> dict[Variant, StoredObject]:
    """Every variant into a checked temporary object.

    A thumbnail or spritesheet upstream doesn't have (a 4xx) is done without; one that failed
    for a reason that passes (a full disk, a 5xx) fails the archive so it is tried again, until
    expiry is near: then the video alone is better than nothing.
    """
    near_expiry = (
        upstream.expires_at is not None and utcnow() >= upstream.expires_at - EXPIRY_MARGIN
    )
    downloaded: dict[Variant, StoredObject] = {}
    try:
        for variant in Variant:
            try:
                downloaded[variant] = await download_variant(
                    provider, storage, upstream.id, variant
                )
            except (ProviderError, StorageError) as error:
                missing = isinstance(error, ProviderError) and not error.retryable
                if variant is Variant.VIDEO or not (missing or near_expiry):
                    raise
                log.warning("variant not archived", upstream=upstream.id, variant=variant)
    except BaseException:
        await discard(storage, downloaded)
        raise
    return downloaded


async def commit_all(
    storage: Storage, downloaded: dict[Variant, StoredObject], video: VideoRecord
) -> VideoRecord:
    """Move each downloaded variant to its archive key (removing it from `downloaded`); the
    video with what it now has in the archive."""
    for variant in list(downloaded):
        stored = await storage.commit(downloaded.pop(variant), archive_key(video.id, variant))
        video = video.archived(variant, ArchivedObject(stored.key, stored.size, stored.sha256))
    return video


async def discard(storage: Storage, downloaded: dict[Variant, StoredObject]) -> None:
    """Delete temporaries that were not committed."""
    for temporary in downloaded.values():
        await storage.delete(temporary.key)
