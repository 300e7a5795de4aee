"""One step of one job under a lease: submit, reconcile, track, archive, clean up.

Every write is guarded by the claim's fencing token (`lease_version`); a step that lost its
lease (it expired, or a user cancelled) fails its next write with LeaseLost and stops. State
reaches the database before each upstream side effect, so a crash at any point leaves a job
the next claim can finish: a create is recorded as SUBMITTING first and, when its outcome is
unknown, found upstream before anything is created again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reelforge.bus import Bus, LocalBus, Notice, Topic
from reelforge.db import videos as queries
from reelforge.db.claim import Claim, check_held, fenced, released
from reelforge.db.engine import Database
from reelforge.db.group import Batch, GroupCommit, Write
from reelforge.db.models import Video
from reelforge.domain.clock import utcnow
from reelforge.domain.schedule import EXPIRY_MARGIN, next_check, poll_delay, retry_delay
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
from reelforge.domain.webhooks import EventType
from reelforge.logs import get_logger
from reelforge.providers.base import Provider
from reelforge.services import ledger, outbound
from reelforge.services.archive import archive_key, download_variant
from reelforge.storage import Storage, StorageError, StoredObject

log = get_logger("reelforge.worker")

MAX_SUBMIT_ATTEMPTS = 8
MAX_CLEANUP_ATTEMPTS = 12
# With provider webhooks a poll is only the safety net for a lost event: the webhook's nudge
# brings the check forward, so one retrieve per video is the norm.
WEBHOOK_SAFETY_POLL = timedelta(seconds=60)
# How far back (before our SUBMITTING mark) an upstream job may be and still be ours.
RECONCILE_SLACK = timedelta(minutes=2)
RECONCILE_PAGES = 5


@dataclass(frozen=True)
class StepResult:
    """When the video is due again (None: nothing more to do until someone nudges it).

    `released`: the step's last write already gave the lease back and set the next check,
    so the engine has nothing left to write.
    """

    next_check_at: datetime | None
    released: bool = False


class Steps:
    def __init__(
        self,
        database: Database,
        storage: Storage,
        provider: Provider,
        *,
        deadline: timedelta,
        webhooks: bool = False,
        rng: random.Random | None = None,
        bus: Bus | None = None,
    ) -> None:
        self._database = database
        self._bus = bus or LocalBus()
        self._storage = storage
        self._provider = provider
        self._deadline = deadline
        self._webhooks = webhooks
        self._rng = rng or random.Random()
        # Steps end with short writes, many at once under concurrency: committed together.
        self._commits = GroupCommit(database)

    async def run(self, claim: Claim) -> StepResult:
        video = claim.video
        state = JobState(video.job_state)
        now = utcnow()
        if video.deleted_at is not None or state in (JobState.CANCELLED,):
            return await self._clean_up(claim, video)
        if state.is_terminal:
            return StepResult(None)
        if video.deadline_at is not None and now >= video.deadline_at:
            return await self._fail(claim, "deadline_exceeded", "The video took too long to make")
        if state is JobState.ACCEPTED:
            return await self._submit(claim, video)
        if state is JobState.SUBMITTING and video.provider_video_id is None:
            return await self._reconcile(claim, video)
        if state is JobState.DOWNLOADING:
            assert video.provider_video_id is not None
            upstream = await self._provider.retrieve(video.provider_video_id)
            return await self._archive(claim, video, upstream)
        return await self._track(claim, video)

    # --- submit -------------------------------------------------------------------------

    async def _submit(self, claim: Claim, video: Video) -> StepResult:
        if video.attempts >= MAX_SUBMIT_ATTEMPTS:
            return await self._fail(
                claim, "submission_failed", video.last_error or "Upstream refused"
            )
        # Recorded before the call: if we die mid-call, the next claim reconciles instead.
        now = utcnow()
        await self._write(
            claim,
            job_state=JobState.SUBMITTING.value,
            attempts=video.attempts + 1,
            deadline_at=video.deadline_at or now + self._deadline,
            metadata_={**video.metadata_, "submitting_since": now.isoformat()},
        )
        try:
            upstream = await self._start_upstream(video)
        except ProviderError as error:
            return await self._submit_failed(claim, video, error)
        return await self._adopt(claim, upstream)

    async def _submit_failed(self, claim: Claim, video: Video, error: ProviderError) -> StepResult:
        if not error.retryable:
            return await self._fail(claim, error.code or "submission_rejected", str(error))
        now = utcnow()
        delay = retry_delay(video.attempts, self._rng)
        # Still SUBMITTING: the next step looks upstream before it creates anything again.
        due = next_check(now, delay, retry_after=error.retry_after)
        return await self._end(claim, due, last_error=str(error)[:2000])

    async def _reconcile(self, claim: Claim, video: Video) -> StepResult:
        """A create whose answer we never saw: adopt its job if upstream has it, else retry."""
        try:
            found = await self._find_upstream(video)
        except ProviderError as error:
            return await self._submit_failed(claim, video, error)
        if found is not None:
            log.info("reconciled a create", video_id=video.id, upstream=found.id)
            return await self._adopt(claim, found)
        return await self._submit(claim, video)

    async def _find_upstream(self, video: Video) -> UpstreamVideo | None:
        since_text = video.metadata_.get("submitting_since")
        since = datetime.fromisoformat(since_text) if since_text else video.created_at
        after = None
        for _ in range(RECONCILE_PAGES):
            page = await self._provider.list(after=after, limit=100, order="desc")
            for item in page.items:
                if item.created_at is not None and item.created_at < since - RECONCILE_SLACK:
                    return None
                if _same_request(item, video) and not await self._taken(item.id):
                    return item
            if not page.has_more or page.last_id is None:
                return None
            after = page.last_id
        return None

    async def _taken(self, upstream_id: str) -> bool:
        async with self._database.reading() as connection:
            return await queries.upstream_job_taken(connection, self._provider.name, upstream_id)

    async def _adopt(self, claim: Claim, upstream: UpstreamVideo) -> StepResult:
        state = _state_of(upstream.status)
        now = utcnow()
        return await self._end(
            claim,
            next_check(now, self._poll_delay(0), poll_after_ms=upstream.poll_after_ms),
            event=(EventKind.SUBMITTED, {"provider_video_id": upstream.id}),
            provider_video_id=upstream.id,
            submitted_at=now,
            job_state=JobState.IN_PROGRESS.value if state.is_terminal else state.value,
            progress=upstream.progress,
            last_error=None,
        )

    def _poll_delay(self, polls: int) -> timedelta:
        delay = poll_delay(polls, self._rng)
        return max(delay, WEBHOOK_SAFETY_POLL) if self._webhooks else delay

    async def _start_upstream(self, video: Video) -> UpstreamVideo:
        if video.remixed_from_video_id is not None:
            parent = await self._get(video.remixed_from_video_id)
            if parent is None or parent.provider_video_id is None:
                raise ProviderError("the parent video has no upstream job to remix", status=400)
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

    # --- track --------------------------------------------------------------------------

    async def _track(self, claim: Claim, video: Video) -> StepResult:
        assert video.provider_video_id is not None
        now = utcnow()
        polls = int(video.metadata_.get("polls", 0))
        try:
            upstream = await self._provider.retrieve(video.provider_video_id)
        except ProviderError as error:
            if not error.retryable:
                return await self._fail(claim, error.code or "upstream_error", str(error))
            errors = int(video.metadata_.get("poll_errors", 0))
            return await self._end(
                claim,
                next_check(now, retry_delay(errors, self._rng), retry_after=error.retry_after),
                last_error=str(error)[:2000],
                metadata_={**video.metadata_, "poll_errors": errors + 1},
            )
        if upstream.status is UpstreamStatus.FAILED:
            return await self._fail(
                claim,
                upstream.error_code or "video_generation_failed",
                upstream.error_message or "The provider could not make this video",
            )
        if upstream.status is UpstreamStatus.COMPLETED:
            return await self._archive(claim, video, upstream)
        delay = self._poll_delay(polls)
        return await self._end(
            claim,
            next_check(now, delay, poll_after_ms=upstream.poll_after_ms),
            progressed=upstream.progress != video.progress,
            job_state=_state_of(upstream.status).value,
            progress=upstream.progress,
            metadata_={**video.metadata_, "polls": polls + 1, "poll_errors": 0},
        )

    # --- archive ------------------------------------------------------------------------

    async def _archive(self, claim: Claim, video: Video, upstream: UpstreamVideo) -> StepResult:
        """Copy the outputs into storage and finish; on the happy path that is one write.

        Nothing is written before the downloads: a crash mid-download leaves the video as
        it was, and the next claim asks upstream again and starts over.
        """
        completion = {
            "progress": 100,
            "completed_at": video.completed_at or upstream.completed_at or utcnow(),
            "expires_at": upstream.expires_at,
        }
        try:
            downloaded = await self._download(upstream, video.id)
        except (ProviderError, StorageError) as error:
            return await self._archive_failed(claim, video, upstream, error, completion)
        columns: dict[str, Any] = {}
        try:
            # A holder that stalled past its lease (or a video cancelled meanwhile) must not
            # put objects back where a clean-up may already have removed them.
            await self._commits.run(_checking_held(claim))
            for variant in list(downloaded):
                key = archive_key(video.id, variant)
                stored = await self._storage.commit(downloaded[variant], key)
                del downloaded[variant]  # committed: nothing left to clean up
                columns |= {
                    f"{variant.value}_key": stored.key,
                    f"{variant.value}_bytes": stored.size,
                    f"{variant.value}_sha256": stored.sha256,
                }
        finally:
            for temporary in downloaded.values():
                await self._storage.delete(temporary.key)
        return await self._finish(claim, video, columns | completion)

    async def _download(
        self, upstream: UpstreamVideo, video_id: str
    ) -> dict[Variant, StoredObject]:
        """Every variant into a checked temporary object.

        A thumbnail or spritesheet upstream doesn't have (a 4xx) is done without; one that
        failed for a reason that passes (a full disk, a 5xx) fails the archive so it is tried
        again, until expiry is near: then the video alone is better than nothing.
        """
        near_expiry = (
            upstream.expires_at is not None and utcnow() >= upstream.expires_at - EXPIRY_MARGIN
        )
        downloaded: dict[Variant, StoredObject] = {}
        try:
            for variant in Variant:
                try:
                    downloaded[variant] = await download_variant(
                        self._provider, self._storage, upstream.id, variant
                    )
                except (ProviderError, StorageError) as error:
                    missing = isinstance(error, ProviderError) and not error.retryable
                    if variant is Variant.VIDEO or not (missing or near_expiry):
                        raise
                    log.warning("variant not archived", video_id=video_id, variant=variant)
        except BaseException:
            for temporary in downloaded.values():
                await self._storage.delete(temporary.key)
            raise
        return downloaded

    async def _archive_failed(
        self,
        claim: Claim,
        video: Video,
        upstream: UpstreamVideo,
        error: Exception,
        completion: dict[str, Any],
    ) -> StepResult:
        now = utcnow()
        if upstream.expires_at is not None and now >= upstream.expires_at:
            return await self._fail(
                claim,
                "expired",
                "Upstream deleted the video before it could be archived",
                state=JobState.EXPIRED,
            )
        failures = int(video.metadata_.get("archive_failures", 0))
        first = JobState(video.job_state) is not JobState.DOWNLOADING
        return await self._end(
            claim,
            next_check(now, retry_delay(failures, self._rng), expires_at=upstream.expires_at),
            event=(EventKind.COMPLETED, {}) if first else None,
            job_state=JobState.DOWNLOADING.value,
            last_error=str(error)[:2000],
            metadata_={**video.metadata_, "archive_failures": failures + 1},
            **completion,
        )

    async def _finish(self, claim: Claim, before: Video, columns: dict[str, Any]) -> StepResult:
        price = self._provider.spec.model(before.model).price(before.size, before.seconds)
        # A video that was DOWNLOADING already had its COMPLETED event (`_archive_failed`).
        first = JobState(before.job_state) is not JobState.DOWNLOADING
        completed: list[tuple[str, dict[str, Any]]] = [(EventKind.COMPLETED, {})] if first else []
        sizes = {k: v for k, v in columns.items() if k.endswith("_bytes")}
        values = {
            "job_state": JobState.COMPLETED.value,
            "archived_at": utcnow(),
            "last_error": None,
            **columns,
            **released(None),
        }

        async def finish(batch: Batch) -> None:
            fenced(batch, claim, final_cost=price, **values)
            ledger.defer_settle(batch, before, price)
            queries.defer_events(batch, claim.video_id, [*completed, (EventKind.ARCHIVED, sizes)])
            outbound.defer_emit(batch, before, EventType.VIDEO_COMPLETED, values)

        await self._commits.run(finish)
        await self._published(claim, "state")
        return StepResult(None, released=True)

    # --- endings ------------------------------------------------------------------------

    async def _fail(
        self, claim: Claim, code: str, message: str, *, state: JobState = JobState.FAILED
    ) -> StepResult:
        failure = {"code": code, "message": message[:500]}
        values = {
            "job_state": state.value,
            "error_code": code[:80],
            "error_message": message[:2000],
            **released(None),
        }

        async def fail(batch: Batch) -> None:
            fenced(batch, claim, final_cost=ledger.REFUNDED_COST, **values)
            # Upstream charges nothing for a job that failed, so neither do we.
            ledger.defer_refund(batch, claim.video)
            queries.defer_events(batch, claim.video_id, [(EventKind.FAILED, failure)])
            outbound.defer_emit(batch, claim.video, EventType.VIDEO_FAILED, values)

        await self._commits.run(fail)
        await self._published(claim, "state")
        return StepResult(None, released=True)

    async def _clean_up(self, claim: Claim, video: Video) -> StepResult:
        """After a cancel or delete: drop the upstream job, and a deleted video's archive."""
        if video.provider_video_id is not None:
            try:
                await self._provider.delete(video.provider_video_id)
            except ProviderError as error:
                if error.status != 404:
                    # Upstream deletes only finished jobs (`video_not_ready`): come back later.
                    attempts = int(video.metadata_.get("cleanup_attempts", 0))
                    if attempts < MAX_CLEANUP_ATTEMPTS:
                        return await self._end(
                            claim,
                            utcnow() + retry_delay(attempts, self._rng),
                            metadata_={**video.metadata_, "cleanup_attempts": attempts + 1},
                        )
                    log.warning("giving up deleting upstream", video_id=video.id)
        if video.deleted_at is not None:
            for variant in Variant:
                key = getattr(video, f"{variant.value}_key")
                if key:
                    await self._storage.delete(key)
            if video.input_reference_key:
                await self._storage.delete(video.input_reference_key)
        return StepResult(None)

    # --- persistence --------------------------------------------------------------------

    async def _end(
        self,
        claim: Claim,
        next_check_at: datetime | None,
        *,
        event: tuple[EventKind, dict[str, Any]] | None = None,
        progressed: bool = False,
        **values: Any,
    ) -> StepResult:
        """The step's last write: its changes, the next check and the lease given back at once."""
        await self._write(
            claim, event=event, progressed=progressed, **values, **released(next_check_at)
        )
        return StepResult(next_check_at, released=True)

    async def _write(
        self,
        claim: Claim,
        *,
        event: tuple[EventKind, dict[str, Any]] | None = None,
        progressed: bool = False,
        **values: Any,
    ) -> None:

        async def write(batch: Batch) -> None:
            fenced(batch, claim, **values)
            if progressed:
                outbound.defer_emit(batch, claim.video, EventType.VIDEO_PROGRESS, values)
            if event is not None:
                queries.defer_events(batch, claim.video_id, [event])

        await self._commits.run(write)
        changed = [name for name in ("job_state", "progress") if name in values]
        if changed:
            await self._published(claim, *changed)

    async def _published(self, claim: Claim, *changed: str) -> None:
        video = claim.video
        notice = Notice(Topic.VIDEO, video.id, video.owner_id, frozenset(changed))
        await self._bus.publish(notice)

    async def _get(self, video_id: str) -> Video | None:
        async with self._database.session() as session:
            return await session.get(Video, video_id)


def _checking_held(claim: Claim) -> Write[None]:
    async def check(batch: Batch) -> None:
        check_held(batch, claim)

    return check


def _same_request(item: UpstreamVideo, video: Video) -> bool:
    return (
        item.prompt == video.prompt
        and item.size == video.size
        and item.seconds == str(video.seconds)
    )


def _state_of(status: UpstreamStatus) -> JobState:
    return {
        UpstreamStatus.QUEUED: JobState.QUEUED,
        UpstreamStatus.IN_PROGRESS: JobState.IN_PROGRESS,
        UpstreamStatus.COMPLETED: JobState.DOWNLOADING,
        UpstreamStatus.FAILED: JobState.FAILED,
    }[status]
