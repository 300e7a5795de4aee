"""One step of one job under a lease: submit, reconcile, track, archive, clean up.

Every write is guarded by the claim's fencing token (`lease_version`); a step that lost its
lease (it expired, or a user cancelled) fails its next write with LeaseLost and stops. State
reaches the database before each upstream side effect, so a crash at any point leaves a job
the next claim can finish: a create is recorded as SUBMITTING first and, when its outcome is
unknown, found upstream before anything is created again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from reelforge.domain.clock import utcnow
from reelforge.domain.lifecycle import REFUNDED_COST, tracked_state, vendor_said, vendor_silent
from reelforge.domain.records import VideoRecord
from reelforge.domain.schedule import next_check, poll_delay, retry_delay
from reelforge.domain.states import JobState
from reelforge.domain.upstream import ProviderError, UpstreamStatus, UpstreamVideo
from reelforge.logs import get_logger
from reelforge.providers.base import Provider
from reelforge.services import archive
from reelforge.services.jobs import Claim, Jobs
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.upstream_limits import UpstreamLimits
from reelforge.storage import Storage, StorageError
from reelforge.worker.upstream import find_upstream, start_upstream

log = get_logger("reelforge.worker")

MAX_SUBMIT_ATTEMPTS = 8
MAX_CLEANUP_ATTEMPTS = 12
# With provider webhooks a poll is only the safety net for a lost event: the webhook's nudge
# brings the check forward, so one retrieve per video is the norm.
WEBHOOK_SAFETY_POLL = timedelta(seconds=60)


@dataclass(frozen=True)
class StepResult:
    """When the video is due again (None: not until someone nudges it); `released`: the step's
    last write gave the lease back already, so the engine has nothing left to write."""

    next_check_at: datetime | None
    released: bool = False


class Steps:
    def __init__(
        self,
        lifecycle: Lifecycle,
        jobs: Jobs,
        storage: Storage,
        provider: Provider | Mapping[str, Provider],
        *,
        deadline: timedelta,
        webhooks: bool = False,
        rng: random.Random | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._storage = storage
        # Several providers at once: each video is stepped by the one it names.
        self._providers = provider if isinstance(provider, Mapping) else {provider.name: provider}
        self._deadline = deadline
        self._webhooks = webhooks
        self._rng = rng or random.Random()
        self._limits = limits

    def _for(self, video: VideoRecord) -> Provider:
        provider = self._providers.get(video.provider)
        if provider is None:
            raise ProviderError(f"provider {video.provider!r} is not configured here", status=503)
        return provider

    async def run(self, claim: Claim) -> StepResult:
        video = claim.video
        now = utcnow()
        if video.deleted_at is not None or video.job_state is JobState.CANCELLED:
            return await self._clean_up(claim, video)
        if video.job_state.is_terminal:
            return StepResult(None)
        if video.deadline_at is not None and now >= video.deadline_at:
            return await self._fail(claim, "deadline_exceeded", "The video took too long to make")
        if self._limits is not None:
            # Before anything is written: a step held back by the vendor's limit costs nothing.
            await self._limits.admit(video.provider)
        if video.job_state is JobState.ACCEPTED:
            return await self._submit(claim, video)
        if video.job_state is JobState.SUBMITTING and video.provider_video_id is None:
            return await self._reconcile(claim, video)
        if video.job_state is JobState.DOWNLOADING:
            assert video.provider_video_id is not None
            upstream = await self._for(video).retrieve(video.provider_video_id)
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
        claim = await self._lifecycle.hold(claim, submitting)
        try:
            upstream = await start_upstream(self._for(video), self._storage, self._jobs, video)
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
            found = await find_upstream(self._for(video), self._jobs, video)
        except ProviderError as error:
            return await self._submit_failed(claim, error)
        if found is not None:
            log.info("reconciled a create", video_id=video.id, upstream=found.id)
            return await self._adopt(claim, found)
        return await self._submit(claim, video)

    async def _adopt(self, claim: Claim, upstream: UpstreamVideo) -> StepResult:
        state = tracked_state(JobState.SUBMITTING, upstream.status)
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
        return await self._end(claim, vendor_said(adopted, upstream), due)

    def _poll_delay(self, polls: int) -> timedelta:
        delay = poll_delay(polls, self._rng)
        return max(delay, WEBHOOK_SAFETY_POLL) if self._webhooks else delay

    # --- track --------------------------------------------------------------------------

    async def _track(self, claim: Claim, video: VideoRecord) -> StepResult:
        assert video.provider_video_id is not None
        now = utcnow()
        polled = replace(video, polls=video.polls + 1)
        try:
            upstream = await self._for(video).retrieve(video.provider_video_id)
        except ProviderError as error:
            if not error.retryable:
                return await self._fail(claim, error.code or "upstream_error", str(error))
            errors = video.poll_errors
            due = next_check(now, retry_delay(errors, self._rng), retry_after=error.retry_after)
            failed = replace(polled, last_error=str(error)[:2000], poll_errors=errors + 1)
            return await self._end(claim, failed, due)
        polled = replace(polled, poll_errors=0)
        if upstream.status is UpstreamStatus.FAILED:
            return await self._fail(
                claim,
                upstream.error_code or "video_generation_failed",
                upstream.error_message or "The provider could not make this video",
                video=polled,
            )
        if upstream.status is UpstreamStatus.COMPLETED:
            return await self._archive(claim, polled, upstream)
        tracked = replace(
            polled,
            # Upstream's answers may arrive out of order; a video never moves back.
            job_state=tracked_state(video.job_state, upstream.status),
            progress=upstream.progress,
        )
        due = next_check(now, self._poll_delay(video.polls), poll_after_ms=upstream.poll_after_ms)
        return await self._end(claim, vendor_said(tracked, upstream), due)

    # --- archive ------------------------------------------------------------------------

    async def _archive(
        self, claim: Claim, video: VideoRecord, upstream: UpstreamVideo
    ) -> StepResult:
        """Copy the outputs into storage and finish; on the happy path that is one write.

        Nothing is written before the downloads: a crash mid-download leaves the video as
        it was, and the next claim asks upstream again and starts over.
        """
        completion = replace(
            vendor_silent(video),
            progress=100,
            completed_at=video.completed_at or upstream.completed_at or utcnow(),
            expires_at=upstream.expires_at,
        )
        try:
            downloaded = await archive.download_all(self._for(video), self._storage, upstream)
        except (ProviderError, StorageError) as error:
            return await self._archive_failed(claim, completion, upstream, error)
        try:
            # A holder that stalled past its lease (or a video cancelled meanwhile) must not
            # put objects back where a clean-up may already have removed them.
            await self._lifecycle.check_held(claim)
            archived = await archive.commit_all(self._storage, downloaded, completion)
        finally:
            await archive.discard(self._storage, downloaded)
        price = self._for(video).spec.model(video.model).price(video.size, video.seconds)
        finished = replace(
            archived,
            job_state=JobState.COMPLETED,
            archived_at=utcnow(),
            last_error=None,
            cost_final=price,
        )
        return await self._end(claim, finished, None)

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
        self,
        claim: Claim,
        code: str,
        message: str,
        *,
        state: JobState = JobState.FAILED,
        video: VideoRecord | None = None,
    ) -> StepResult:
        """End the job as `state` (`video`: the claim's video as this step left it)."""
        failed = replace(
            vendor_silent(video or claim.video),
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
                await self._for(video).delete(video.provider_video_id)
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
