"""Video states: the public statuses, the job engine's internal states, and the allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class VideoStatus(StrEnum):
    """What users see: the protocol's four statuses, plus `cancelled`."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobState(StrEnum):
    """Where the job engine is with a video."""

    ACCEPTED = "accepted"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def public_status(self) -> VideoStatus:
        return PUBLIC_STATUS[self]


TERMINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}
)

# A video is `completed` for users only once it is in our archive, so DOWNLOADING still reads
# as in progress; an upstream output that expired before we archived it is a failure to them.
PUBLIC_STATUS: Mapping[JobState, VideoStatus] = {
    JobState.ACCEPTED: VideoStatus.QUEUED,
    JobState.SUBMITTING: VideoStatus.QUEUED,
    JobState.QUEUED: VideoStatus.QUEUED,
    JobState.IN_PROGRESS: VideoStatus.IN_PROGRESS,
    JobState.DOWNLOADING: VideoStatus.IN_PROGRESS,
    JobState.COMPLETED: VideoStatus.COMPLETED,
    JobState.FAILED: VideoStatus.FAILED,
    JobState.CANCELLED: VideoStatus.CANCELLED,
    JobState.EXPIRED: VideoStatus.FAILED,
}

_ENDINGS = frozenset({JobState.FAILED, JobState.CANCELLED})
# Upstream may finish between two looks, so a tracked video can go straight to its archive.
_FINISHING = frozenset({JobState.DOWNLOADING, JobState.COMPLETED, JobState.EXPIRED})

TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.ACCEPTED: frozenset({JobState.SUBMITTING}) | _ENDINGS,
    JobState.SUBMITTING: frozenset({JobState.QUEUED, JobState.IN_PROGRESS, JobState.DOWNLOADING})
    | _ENDINGS,
    JobState.QUEUED: frozenset({JobState.IN_PROGRESS}) | _FINISHING | _ENDINGS,
    JobState.IN_PROGRESS: _FINISHING | _ENDINGS,
    JobState.DOWNLOADING: frozenset({JobState.COMPLETED, JobState.EXPIRED}) | _ENDINGS,
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.EXPIRED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: JobState, target: JobState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal)"
        super().__init__(f"cannot move a video from {current} to {target}; allowed: {allowed}")


def check_transition(current: JobState, target: JobState) -> None:
    """Raise IllegalTransition unless `current -> target` is a forward move (or a no-op)."""
    if target != current and target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
