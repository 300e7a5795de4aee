"""The rules of a video's life: which moves are allowed, and what each move brings with it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from reelforge.domain.records import VENDOR_MESSAGE_LENGTH, VideoRecord
from reelforge.domain.states import JobState, check_transition
from reelforge.domain.upstream import UpstreamStatus, UpstreamVideo
from reelforge.domain.videos import EventKind
from reelforge.domain.webhooks import EventType, VideoSnapshot

# What a video whose reservation was given back finally cost.
REFUNDED_COST = Decimal(0)
_FAILURES = frozenset({JobState.FAILED, JobState.EXPIRED})


class Closing(StrEnum):
    """How a video's ledger closes: charged its final cost, or its reservation given back."""

    SETTLE = "settle"
    REFUND = "refund"


@dataclass(frozen=True)
class Effects:
    """Everything that goes with one change of a video, written in the same unit of work."""

    events: tuple[tuple[EventKind, dict[str, Any]], ...] = ()
    closing: Closing | None = None
    webhook: EventType | None = None
    # What subscribers of the bus are told changed; nothing when they have nothing to re-read.
    changed: frozenset[str] = frozenset()


def accepted(video: VideoRecord, kind: EventKind) -> Effects:
    """A new video: its first event; the reservation goes in beside it."""
    data: dict[str, Any] = {
        "model": video.model,
        "size": video.size,
        "seconds": str(video.seconds),
        "cost_estimate": str(video.cost_estimate),
    }
    if video.remixed_from_video_id:
        data["remixed_from_video_id"] = video.remixed_from_video_id
    return Effects(((kind, data),), None, EventType.VIDEO_CREATED, frozenset({"created"}))


def effects(before: VideoRecord, after: VideoRecord) -> Effects:
    """What moving `before` to `after` brings; IllegalTransition if the move is not allowed.

    A new side effect of a move (another event, another webhook) is added here, and only here.
    """
    check_transition(before.job_state, after.job_state)
    events: list[tuple[EventKind, dict[str, Any]]] = []
    changed: set[str] = set()
    entered = after.job_state if after.job_state != before.job_state else None
    if after.provider_video_id and not before.provider_video_id:
        events.append((EventKind.SUBMITTED, {"provider_video_id": after.provider_video_id}))
    if entered is JobState.DOWNLOADING or (
        entered is JobState.COMPLETED and before.job_state is not JobState.DOWNLOADING
    ):
        events.append((EventKind.COMPLETED, {}))  # upstream finished; the archive follows
    closing, webhook = None, None
    if entered is JobState.COMPLETED:
        sizes = {f"{variant.value}_bytes": o.size for variant, o in after.archive.items()}
        events.append((EventKind.ARCHIVED, sizes))
        closing, webhook = Closing.SETTLE, EventType.VIDEO_COMPLETED
    elif entered in _FAILURES:
        failure = {"code": after.error_code, "message": (after.error_message or "")[:500]}
        events.append((EventKind.FAILED, failure))
        closing, webhook = Closing.REFUND, EventType.VIDEO_FAILED
    elif entered is JobState.CANCELLED:
        events.append((EventKind.CANCELLED, {}))
        closing = Closing.SETTLE if _submitted(before) else Closing.REFUND
        webhook = EventType.VIDEO_CANCELLED
    elif after.progress != before.progress and not after.job_state.is_terminal:
        webhook = EventType.VIDEO_PROGRESS
    if entered is not None:
        changed.add("state")
    if after.progress != before.progress:
        changed.add("progress")
    if vendor_view(after) != vendor_view(before):
        changed.add("vendor")
    if after.deleted_at is not None and before.deleted_at is None:
        events.append((EventKind.DELETED, {}))
        changed.add("deleted")
    return Effects(tuple(events), closing, webhook, frozenset(changed))


def cancelled(video: VideoRecord, now: datetime) -> VideoRecord:
    """`video` cancelled by its user: once upstream may have started, that cost is real, and
    the engine looks once more to delete the upstream job."""
    submitted = _submitted(video)
    return replace(
        video,
        job_state=JobState.CANCELLED,
        queue_position=None,
        vendor_message=None,
        cost_final=video.cost_estimate if submitted else REFUNDED_COST,
        next_check_at=now if submitted else None,
        lease_owner=None,
        lease_until=None,
    )


def deleted(video: VideoRecord, now: datetime) -> VideoRecord:
    """`video` deleted: the engine removes its upstream job and its archive when it next looks."""
    return replace(video, deleted_at=now, next_check_at=now)


def _submitted(video: VideoRecord) -> bool:
    return video.provider_video_id is not None or video.job_state != JobState.ACCEPTED


def snapshot(video: VideoRecord) -> VideoSnapshot:
    """What an outgoing webhook says about `video`."""
    return VideoSnapshot(
        id=video.id,
        job_state=video.job_state,
        progress=video.progress,
        error_code=video.error_code,
        error_message=video.error_message,
    )


_TRACKED = (JobState.QUEUED, JobState.IN_PROGRESS, JobState.DOWNLOADING)
_UPSTREAM = {
    UpstreamStatus.QUEUED: JobState.QUEUED,
    UpstreamStatus.IN_PROGRESS: JobState.IN_PROGRESS,
    UpstreamStatus.COMPLETED: JobState.DOWNLOADING,
    UpstreamStatus.FAILED: JobState.FAILED,
}


def tracked_state(current: JobState, reported: UpstreamStatus) -> JobState:
    """Where a video is once upstream reports `reported`: answers may arrive out of order, so
    a tracked video never moves back."""
    state = _UPSTREAM[reported]
    if current in _TRACKED and state in _TRACKED:
        return max(current, state, key=_TRACKED.index)
    return state


def vendor_said(video: VideoRecord, upstream: UpstreamVideo) -> VideoRecord:
    """`video` (in the state this answer moved it to) with what its vendor last said: the
    queue position only while queued, the latest log line only while running; a job that
    moved on clears what no longer holds."""
    queued = video.job_state is JobState.QUEUED and upstream.status is UpstreamStatus.QUEUED
    running = video.job_state is JobState.IN_PROGRESS
    message = _clean(upstream.log_message) if running else None
    return replace(
        video,
        queue_position=upstream.queue_position if queued else None,
        # A poll without a new line keeps the last one: the job said nothing since.
        vendor_message=message or (video.vendor_message if running else None),
    )


def vendor_silent(video: VideoRecord) -> VideoRecord:
    """`video` with nothing from its vendor: the job left the vendor's hands."""
    return replace(video, queue_position=None, vendor_message=None)


def vendor_view(video: VideoRecord) -> tuple[int | None, str | None]:
    return video.queue_position, video.vendor_message


def _clean(message: str | None) -> str | None:
    """A vendor's free text as a column holds it: no NULs (PostgreSQL refuses them), bounded."""
    if message is None:
        return None
    cleaned = message.replace("\x00", "").strip()
    return cleaned[:VENDOR_MESSAGE_LENGTH] or None
