"""The job engine's leases (claim, extend, release) and the reads a step makes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from reelforge.db import claim as leases
from reelforge.db import videos as queries
from reelforge.db.claim import Claim, LeaseLost
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.records import VideoRecord

__all__ = ["Claim", "Jobs", "LeaseLost"]


_VIDEO = select(*Video.__table__.c).where(Video.id == bindparam("video_id"))


class Jobs:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[Claim]:
        """Lease up to `limit` videos whose next check is due and whose lease ran out."""
        return await leases.claim_due(
            self._database, owner=owner, now=now, lease=lease, limit=limit
        )

    async def extend(self, claim: Claim, *, now: datetime, lease: timedelta) -> Claim:
        """Hold the lease longer; LeaseLost when it is no longer ours."""
        return await leases.extend(self._database, claim, now=now, lease=lease)

    async def release(self, claim: Claim, *, next_check_at: datetime | None) -> bool:
        """Give the lease back, due again `next_check_at`; False if it wasn't ours."""
        return await leases.release(self._database, claim, next_check_at=next_check_at)

    async def video(self, video_id: str) -> VideoRecord | None:
        async with self._database.reading() as connection:
            row = (await connection.execute(_VIDEO, {"video_id": video_id})).first()
        return leases.record_of(row) if row is not None else None

    async def upstream_job_taken(self, provider: str, upstream_id: str) -> bool:
        """Whether a video already refers to this upstream job."""
        async with self._database.reading() as connection:
            return await queries.upstream_job_taken(connection, provider, upstream_id)
