"""The interim driver: takes each accepted video through submit, track and archive in-process.

It stands in for the durable job engine (DESIGN.md §4) and will be replaced by it. It already
keeps the engine's two promises that matter most: state is written before each upstream side
effect, and every write is guarded by the video's fencing token, so a cancel or delete (which
bumps `lease_version`) stops it. What it lacks: leases across processes, retries with backoff,
reconciling a create whose outcome is unknown, webhooks and housekeeping.
"""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reelforge.db.engine import Database
from reelforge.db.models import Video, VideoEvent
from reelforge.domain.catalog import ProviderSpec
from reelforge.domain.clock import utcnow
from reelforge.domain.states import JobState
from reelforge.domain.upstream import (
    CreateRequest,
    ImageBytes,
    ProviderError,
    UpstreamStatus,
    UpstreamVideo,
    Variant,
)
from reelforge.domain.videos import EventKind
from reelforge.logs import get_logger
from reelforge.providers.base import Provider
from reelforge.services import ledger
from reelforge.services.archive import archive_variant
from reelforge.storage import Storage, StorageError

log = get_logger("reelforge.inline")

MIN_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 10.0


class Fenced(Exception):
    """The video was cancelled or deleted meanwhile; this driver must stop touching it."""


class InlineDriver:
    def __init__(self, database: Database, storage: Storage, provider: Provider) -> None:
        self._database = database
        self._storage = storage
        self._provider = provider

    @property
    def spec(self) -> ProviderSpec:
        return self._provider.spec

    async def drive(self, video_id: str) -> None:
        """Take one video as far as it goes; never raises (failures land on the video)."""
        try:
            await self._drive(video_id)
        except Fenced:
            log.info("video changed under the driver; stopping", video_id=video_id)
        except Exception:
            log.exception("inline driver crashed", video_id=video_id)
            await self._fail_quietly(video_id, "internal_error", "Reelforge failed to finish it")

    async def pending(self) -> list[str]:
        """Videos a previous run left unfinished, to pick up after a restart."""
        terminal = [state.value for state in JobState if state.is_terminal]
        async with self._database.session() as session:
            query = select(Video.id).where(
                Video.job_state.not_in(terminal), Video.deleted_at.is_(None)
            )
            return list((await session.scalars(query)).all())

    async def _drive(self, video_id: str) -> None:
        video = await self._load(video_id)
        if JobState(video.job_state).is_terminal or video.deleted_at is not None:
            return
        version = video.lease_version
        upstream_id = video.provider_video_id
        if upstream_id is None:
            upstream = await self._submit(video, version)
            if upstream is None:
                return
            upstream_id = upstream.id
        await self._track(video_id, version, upstream_id)

    async def _submit(self, video: Video, version: int) -> UpstreamVideo | None:
        await self._write(video.id, version, job_state=JobState.SUBMITTING.value)
        try:
            upstream = await self._start_upstream(video)
        except ProviderError as error:
            await self._fail(video.id, version, error.code or "submission_failed", str(error))
            return None
        state = _state_of(upstream.status)
        await self._write(
            video.id,
            version,
            event=(EventKind.SUBMITTED, {"provider_video_id": upstream.id}),
            provider_video_id=upstream.id,
            submitted_at=utcnow(),
            job_state=state.value if not state.is_terminal else JobState.IN_PROGRESS.value,
            progress=upstream.progress,
        )
        return upstream

    async def _start_upstream(self, video: Video) -> UpstreamVideo:
        if video.remixed_from_video_id is not None:
            parent = await self._load(video.remixed_from_video_id)
            if parent.provider_video_id is None:
                raise ProviderError("the parent video has no upstream job to remix")
            return await self._provider.remix(parent.provider_video_id, video.prompt)
        reference = None
        if video.input_reference_key is not None:
            data = await self._storage.read(video.input_reference_key)
            reference = ImageBytes(data=data, content_type=video.input_reference_type or "")
        return await self._provider.create(
            CreateRequest(
                prompt=video.prompt,
                model=video.model,
                size=video.size,
                seconds=str(video.seconds),
                input_reference=reference,
            )
        )

    async def _track(self, video_id: str, version: int, upstream_id: str) -> None:
        wait = MIN_POLL_SECONDS
        while True:
            await anyio.sleep(wait)
            try:
                upstream = await self._provider.retrieve(upstream_id)
            except ProviderError as error:
                if not error.retryable:
                    await self._fail(video_id, version, error.code or "upstream_error", str(error))
                    return
                wait = min(max(wait * 2, error.retry_after or 0), MAX_POLL_SECONDS)
                continue
            if upstream.status is UpstreamStatus.FAILED:
                await self._fail(
                    video_id,
                    version,
                    upstream.error_code or "video_generation_failed",
                    upstream.error_message or "The provider could not make this video",
                )
                return
            if upstream.status is UpstreamStatus.COMPLETED:
                await self._archive(video_id, version, upstream)
                return
            await self._write(
                video_id,
                version,
                job_state=_state_of(upstream.status).value,
                progress=upstream.progress,
            )
            hint = (upstream.poll_after_ms or 0) / 1000
            wait = min(max(hint, wait * 1.5, MIN_POLL_SECONDS), MAX_POLL_SECONDS)

    async def _archive(self, video_id: str, version: int, upstream: UpstreamVideo) -> None:
        await self._write(
            video_id,
            version,
            event=(EventKind.COMPLETED, {}),
            job_state=JobState.DOWNLOADING.value,
            progress=100,
            completed_at=upstream.completed_at or utcnow(),
            expires_at=upstream.expires_at,
        )
        columns: dict[str, Any] = {}
        for variant in Variant:
            try:
                stored = await archive_variant(
                    self._provider, self._storage, upstream.id, video_id, variant
                )
            except (ProviderError, StorageError) as error:
                if variant is Variant.VIDEO:
                    await self._fail(video_id, version, "archive_failed", str(error))
                    return
                log.warning("variant not archived", video_id=video_id, variant=variant)
                continue
            columns |= {
                f"{variant.value}_key": stored.key,
                f"{variant.value}_bytes": stored.size,
                f"{variant.value}_sha256": stored.sha256,
            }
        await self._finish(video_id, version, columns)

    async def _finish(self, video_id: str, version: int, columns: dict[str, Any]) -> None:
        async with self._database.session() as session, session.begin():
            video = await self._guarded(session, video_id, version, archived_at=utcnow(), **columns)
            video.job_state = JobState.COMPLETED.value
            price = self.spec.model(video.model).price(video.size, video.seconds)
            await ledger.settle(session, video, price)
            session.add(
                VideoEvent(video_id=video_id, kind=EventKind.ARCHIVED, data=_sizes(columns))
            )

    async def _fail(self, video_id: str, version: int, code: str, message: str) -> None:
        async with self._database.session() as session, session.begin():
            video = await self._guarded(
                session,
                video_id,
                version,
                job_state=JobState.FAILED.value,
                error_code=code[:80],
                error_message=message,
            )
            # Upstream charges nothing for a job that failed, so neither do we.
            await ledger.refund(session, video)
            session.add(
                VideoEvent(
                    video_id=video_id,
                    kind=EventKind.FAILED,
                    data={"code": code, "message": message},
                )
            )

    async def _fail_quietly(self, video_id: str, code: str, message: str) -> None:
        try:
            video = await self._load(video_id)
            if not JobState(video.job_state).is_terminal:
                await self._fail(video_id, video.lease_version, code, message)
        except Exception:
            log.exception("could not record the failure", video_id=video_id)

    async def _write(
        self,
        video_id: str,
        version: int,
        *,
        event: tuple[EventKind, dict[str, Any]] | None = None,
        **values: Any,
    ) -> None:
        async with self._database.session() as session, session.begin():
            await self._guarded(session, video_id, version, **values)
            if event is not None:
                session.add(VideoEvent(video_id=video_id, kind=event[0], data=event[1]))

    async def _guarded(
        self, session: AsyncSession, video_id: str, version: int, **values: Any
    ) -> Video:
        """Apply `values` only if nobody bumped the fencing token since we started."""
        result = await session.execute(
            update(Video)
            .where(Video.id == video_id, Video.lease_version == version)
            .values(**values, updated_at=utcnow())
        )
        if not getattr(result, "rowcount", 0):
            raise Fenced(video_id)
        video = await session.get(Video, video_id, populate_existing=True)
        if video is None:
            raise Fenced(video_id)
        return video

    async def _load(self, video_id: str) -> Video:
        async with self._database.session() as session:
            video = await session.get(Video, video_id)
            if video is None:
                raise Fenced(video_id)
            return video


def _state_of(status: UpstreamStatus) -> JobState:
    return {
        UpstreamStatus.QUEUED: JobState.QUEUED,
        UpstreamStatus.IN_PROGRESS: JobState.IN_PROGRESS,
        UpstreamStatus.COMPLETED: JobState.DOWNLOADING,
        UpstreamStatus.FAILED: JobState.FAILED,
    }[status]


def _sizes(columns: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in columns.items() if name.endswith("_bytes")}
