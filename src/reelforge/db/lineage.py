"""Queries for a video's lineage: the parents it was remixed from and the remixes made of it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db.models import Video
from reelforge.db.videos import to_view, visible_view
from reelforge.domain.videos import VideoView


async def ancestors(
    connection: AsyncConnection, video: VideoView, owner_id: str | None, limit: int
) -> list[VideoView]:
    """The parents of `video` the reader can see, nearest first, at most `limit` of them."""
    found: list[VideoView] = []
    parent_id = video.remixed_from_video_id
    while parent_id is not None and len(found) < limit:
        parent = await visible_view(connection, parent_id, owner_id)
        if parent is None:
            break
        found.append(parent)
        parent_id = parent.remixed_from_video_id
    return found


async def remixes_of(
    connection: AsyncConnection, parent_ids: list[str], owner_id: str | None, limit: int
) -> list[VideoView]:
    """The visible videos remixed from any of `parent_ids`, oldest first."""
    query = select(*Video.__table__.columns).where(
        Video.remixed_from_video_id.in_(parent_ids), Video.deleted_at.is_(None)
    )
    if owner_id is not None:
        query = query.where(Video.owner_id == owner_id)
    query = query.order_by(Video.created_at, Video.id).limit(limit)
    return [to_view(row) for row in (await connection.execute(query)).all()]
