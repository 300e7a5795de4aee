"""Copying a finished video's outputs from the provider into our storage, checked."""

from __future__ import annotations

from reelforge.domain.upstream import Variant
from reelforge.providers.base import Provider
from reelforge.storage import IntegrityError, Storage, StoredObject


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
