"""Copying a finished video's outputs from the provider into our storage, checked and committed."""

from __future__ import annotations

from reelforge.domain.upstream import Variant
from reelforge.domain.videos import ArchivedObject
from reelforge.providers.base import Provider
from reelforge.storage import IntegrityError, Storage


def archive_key(video_id: str, variant: Variant) -> str:
    return f"videos/{video_id}/{variant.value}.{variant.extension}"


async def archive_variant(
    provider: Provider, storage: Storage, upstream_id: str, video_id: str, variant: Variant
) -> ArchivedObject:
    """Stream one output into a temporary object, check its size, then commit it in place.

    A crash anywhere before the commit leaves only a temporary object, which housekeeping
    removes; the archive key only ever holds a whole, checked file.
    """
    async with provider.stream_content(upstream_id, variant) as content:
        temporary = await storage.put_temporary(content.aiter_bytes())
        if content.content_length is not None and temporary.size != content.content_length:
            await storage.delete(temporary.key)
            raise IntegrityError(
                f"{variant} of {upstream_id}: got {temporary.size} of "
                f"{content.content_length} bytes"
            )
    committed = await storage.commit(temporary, archive_key(video_id, variant))
    return ArchivedObject(key=committed.key, size=committed.size, sha256=committed.sha256)
