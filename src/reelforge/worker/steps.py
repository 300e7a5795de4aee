"""One step of one job under a lease: submit, reconcile, track, archive, clean up.

Every write is guarded by the claim's fencing token (`lease_version`); a step that lost its
lease (it expired, or a user cancelled) fails its next write with LeaseLost and stops. State
reaches the database before each upstream side effect, so a crash at any point leaves a job
the next claim can finish: a create is recorded as SUBMITTING first and, when its outcome is
unknown, found upstream before anything is created again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from reelforge.domain.clock import utcnow
from reelforge.domain.lifecycle import REFUNDED_COST
from reelforge.domain.records import VideoRecord
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
from reelforge.domain.videos import ArchivedObject
from reelforge.logs import get_logger
from reelforge.providers.base import Provider
from reelforge.services.archive import archive_key, download_variant
from reelforge.services.jobs import Claim, Jobs
from reelforge.services.lifecycle import Lifecycle
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
        lifecycle: Lifecycle,
        jobs: Jobs,
        storage: Storage,
        provider: Provider,
        *,
        deadline: timedelta,
        webhooks: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._storage = storage
        self._provider = provider
        self._deadline = deadline
        self._webhooks = webhooks
        self._rng = rng or random.Random()

    async def run(self, claim: Claim) -> StepResult:
        video = claim.video
        now = utcnow()
        if video.deleted_at is not None or video.job_state is JobState.CANCELLED:
            return await self._clean_up(claim, video)
        if video.job_state.is_terminal:
            return StepResult(None)
        if video.deadline_at is not None and now >= video.deadline_at:
            return await self._fail(claim, "deadline_exceeded", "The video took too long to make")
        if video.job_state is JobState.ACCEPTED:
            return await self._submit(claim, video)
        if video.job_state is JobState.SUBMITTING and video.provider_video_id is None:
            return await self._reconcile(claim, video)
        if video.job_state is JobState.DOWNLOADING:
            assert video.provider_video_id is not None
            upstream = await self._provider.retrieve(video.provider_video_id)
            return await self._archive(claim, video, upstream)
        return await self._track(claim, video)

    # --- submit -------------------------------------------------------------------------

    async def _submit(self, claim: Claim, video: VideoRecord) -> StepResult:
        if video.attempts >= MAX_SUBMIT_ATTEMPTS:
            return await self._fail(
                claim, "submission_failed", video.last_error or "Upstream refused"
            )
        # Recorded before the call: if we die mid-call, the next claim reconciles instead.
        now = utcnow()
        submitting = replace(
            video,
            job_state=JobState.SUBMITTING,
            attempts=video.attempts + 1,
            deadline_at=video.deadline_at or now + self._deadline,
            submitting_since=now,
        )
        await self._lifecycle.hold(claim, submitting)
        claim = replace(claim, video=submitting)
        try:
            upstream = await self._start_upstream(video)
        except ProviderError as error:
            return await self._submit_failed(claim, error)
        return await self._adopt(claim, upstream)

    async def _submit_failed(self, claim: Claim, error: ProviderError) -> StepResult:
        if not error.retryable:
            return await self._fail(claim, error.code or "submission_rejected", str(error))
        video = claim.video
        delay = retry_delay(video.attempts, self._rng)
        # Still SUBMITTING: the next step looks upstream before it creates anything again.
        due = next_check(utcnow(), delay, retry_after=error.retry_after)
        return await self._end(claim, replace(video, last_error=str(error)[:2000]), due)

    async def _reconcile(self, claim: Claim, video: VideoRecord) -> StepResult:
        """A create whose answer we never saw: adopt its job if upstream has it, else retry."""
        try:
            found = await self._find_upstream(video)
        except ProviderError as error:
            return await self._submit_failed(claim, error)
        if found is not None:
            log.info("reconciled a create", video_id=video.id, upstream=found.id)
            return await self._adopt(claim, found)
        return await self._submit(claim, video)

    async def _find_upstream(self, video: VideoRecord) -> UpstreamVideo | None:
        since = video.submitting_since or video.created_at
        after = None
        for _ in range(RECONCILE_PAGES):
            page = await self._provider.list(after=after, limit=100, order="desc")
            for item in page.items:
                if item.created_at is not None and item.created_at < since - RECONCILE_SLACK:
                    return None
                if _same_request(item, video) and not await self._jobs.upstream_job_taken(
                    self._provider.name, item.id
                ):
                    return item
            if not page.has_more or page.last_id is None:
                return None
            after = page.last_id
        return None

    async def _adopt(self, claim: Claim, upstream: UpstreamVideo) -> StepResult:
        state = _state_of(upstream.status)
        now = utcnow()
        adopted = replace(
            claim.video,
            provider_video_id=upstream.id,
            submitted_at=now,
            job_state=JobState.IN_PROGRESS if state.is_terminal else state,
            progress=upstream.progress,
            last_error=None,
        )
        due = next_check(now, self._poll_delay(0), poll_after_ms=upstream.poll_after_ms)
        return await self._end(claim, adopted, due)

    def _poll_delay(self, polls: int) -> timedelta:
        delay = poll_delay(polls, self._rng)
        return max(delay, WEBHOOK_SAFETY_POLL) if self._webhooks else delay

    async def _start_upstream(self, video: VideoRecord) -> UpstreamVideo:
        if video.remixed_from_video_id is not None:
            parent = await self._jobs.video(video.remixed_from_video_id)
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

    async def _track(self, claim: Claim, video: VideoRecord) -> StepResult:
        assert video.provider_video_id is not None
        now = utcnow()
        try:
            upstream = await self._provider.retrieve(video.provider_video_id)
        except ProviderError as error:
            if not error.retryable:
                return await self._fail(claim, error.code or "upstream_error", str(error))
            due = next_check(
                now, retry_delay(video.poll_errors, self._rng), retry_after=error.retry_after
            )
            failed = replace(video, last_error=str(error)[:2000], poll_errors=video.poll_errors + 1)
            return await self._end(claim, failed, due)
        if upstream.status is UpstreamStatus.FAILED:
            return await self._fail(
                claim,
                upstream.error_code or "video_generation_failed",
                upstream.error_message or "The provider could not make this video",
            )
        if upstream.status is UpstreamStatus.COMPLETED:
            return await self._archive(claim, video, upstream)
        tracked = replace(
            video,
            # Upstream's answers may arrive out of order; a video never moves back.
            job_state=_later(video.job_state, _state_of(upstream.status)),
            progress=upstream.progress,
            polls=video.polls + 1,
            poll_errors=0,
        )
        due = next_check(now, self._poll_delay(video.polls), poll_after_ms=upstream.poll_after_ms)
        return await self._end(claim, tracked, due)

    # --- archive ------------------------------------------------------------------------

    async def _archive(
        self, claim: Claim, video: VideoRecord, upstream: UpstreamVideo
    ) -> StepResult:
        """Copy the outputs into storage and finish; on the happy path that is one write.

        Nothing is written before the downloads: a crash mid-download leaves the video as
        it was, and the next claim asks upstream again and starts over.
        """
        completion = replace(
            video,
            progress=100,
            completed_at=video.completed_at or upstream.completed_at or utcnow(),
            expires_at=upstream.expires_at,
        )
        try:
            downloaded = await self._download(upstream, video.id)
        except (ProviderError, StorageError) as error:
            return await self._archive_failed(claim, completion, upstream, error)
        archived = completion
        try:
            # A holder that stalled past its lease (or a video cancelled meanwhile) must not
            # put objects back where a clean-up may already have removed them.
            await self._lifecycle.check_held(claim)
            for variant in list(downloaded):
                stored = await self._storage.commit(
                    downloaded[variant], archive_key(video.id, variant)
                )
                del downloaded[variant]  # committed: nothing left to clean up
                kept = ArchivedObject(stored.key, stored.size, stored.sha256)
                archived = archived.archived(variant, kept)
        finally:
            for temporary in downloaded.values():
                await self._storage.delete(temporary.key)
        price = self._provider.spec.model(video.model).price(video.size, video.seconds)
        finished = replace(
            archived,
            job_state=JobState.COMPLETED,
            archived_at=utcnow(),
            last_error=None,
            cost_final=price,
        )
        return await self._end(claim, finished, None)

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
        self, claim: Claim, completion: VideoRecord, upstream: UpstreamVideo, error: Exception
    ) -> StepResult:
        now = utcnow()
        if upstream.expires_at is not None and now >= upstream.expires_at:
            return await self._fail(
                claim,
                "expired",
                "Upstream deleted the video before it could be archived",
                state=JobState.EXPIRED,
            )
        failures = completion.archive_failures
        retrying = replace(
            completion,
            job_state=JobState.DOWNLOADING,
            last_error=str(error)[:2000],
            archive_failures=failures + 1,
        )
        due = next_check(now, retry_delay(failures, self._rng), expires_at=upstream.expires_at)
        return await self._end(claim, retrying, due)

    # --- endings ------------------------------------------------------------------------

    async def _fail(
        self, claim: Claim, code: str, message: str, *, state: JobState = JobState.FAILED
    ) -> StepResult:
        failed = replace(
            claim.video,
            job_state=state,
            error_code=code[:80],
            error_message=message[:2000],
            # Upstream charges nothing for a job that failed, so neither do we.
            cost_final=REFUNDED_COST,
        )
        return await self._end(claim, failed, None)

    async def _clean_up(self, claim: Claim, video: VideoRecord) -> StepResult:
        """After a cancel or delete: drop the upstream job, and a deleted video's archive."""
        if video.provider_video_id is not None:
            try:
                await self._provider.delete(video.provider_video_id)
            except ProviderError as error:
                if error.status != 404:
                    # Upstream deletes only finished jobs (`video_not_ready`): come back later.
                    attempts = video.cleanup_attempts
                    if attempts < MAX_CLEANUP_ATTEMPTS:
                        again = replace(video, cleanup_attempts=attempts + 1)
                        due = utcnow() + retry_delay(attempts, self._rng)
                        return await self._end(claim, again, due)
                    log.warning("giving up deleting upstream", video_id=video.id)
        if video.deleted_at is not None:
            for stored in video.archive.values():
                await self._storage.delete(stored.key)
            if video.input_reference_key:
                await self._storage.delete(video.input_reference_key)
        return StepResult(None)

    async def _end(
        self, claim: Claim, after: VideoRecord, next_check_at: datetime | None
    ) -> StepResult:
        """The step's last write: its change, the next check and the lease given back at once."""
        await self._lifecycle.step(claim, after, next_check_at=next_check_at)
        return StepResult(next_check_at, released=True)


def _same_request(item: UpstreamVideo, video: VideoRecord) -> bool:
    return (
        item.prompt == video.prompt
        and item.size == video.size
        and item.seconds == str(video.seconds)
    )


_ORDER = (JobState.QUEUED, JobState.IN_PROGRESS, JobState.DOWNLOADING)


def _later(current: JobState, reported: JobState) -> JobState:
    if current in _ORDER and reported in _ORDER:
        return max(current, reported, key=_ORDER.index)
    return reported


def _state_of(status: UpstreamStatus) -> JobState:
    return {
        UpstreamStatus.QUEUED: JobState.QUEUED,
        UpstreamStatus.IN_PROGRESS: JobState.IN_PROGRESS,
        UpstreamStatus.COMPLETED: JobState.DOWNLOADING,
        UpstreamStatus.FAILED: JobState.FAILED,
    }[status]
