"""Video states: what users see for each job state, and which moves are allowed."""

from __future__ import annotations

import pytest

from reelforge.domain.states import (
    TRANSITIONS,
    IllegalTransition,
    JobState,
    VideoStatus,
    check_transition,
)


def test_a_video_reads_completed_only_once_archived() -> None:
    assert JobState.DOWNLOADING.public_status is VideoStatus.IN_PROGRESS
    assert JobState.COMPLETED.public_status is VideoStatus.COMPLETED
    assert JobState.EXPIRED.public_status is VideoStatus.FAILED


@pytest.mark.parametrize("state", [s for s in JobState if s.is_terminal])
def test_terminal_states_go_nowhere(state: JobState) -> None:
    for target in JobState:
        if target != state:
            with pytest.raises(IllegalTransition):
                check_transition(state, target)


def test_forward_moves_are_allowed_and_backward_ones_refused() -> None:
    check_transition(JobState.ACCEPTED, JobState.SUBMITTING)
    check_transition(JobState.IN_PROGRESS, JobState.DOWNLOADING)
    check_transition(JobState.DOWNLOADING, JobState.COMPLETED)

    with pytest.raises(IllegalTransition, match="cannot move a video from in_progress to queued"):
        check_transition(JobState.IN_PROGRESS, JobState.QUEUED)


def test_every_state_can_fail_or_be_cancelled_until_it_ends() -> None:
    for state, targets in TRANSITIONS.items():
        if not state.is_terminal:
            assert {JobState.FAILED, JobState.CANCELLED} <= targets
