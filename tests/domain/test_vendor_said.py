"""What a vendor said about a job, as a video keeps it: the queue position only while queued,
the latest log line only while running (no NULs, bounded), nothing once the job moved on."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from reelforge.domain.clock import utcnow
from reelforge.domain.lifecycle import effects, vendor_said
from reelforge.domain.records import VENDOR_MESSAGE_LENGTH, VideoRecord
from reelforge.domain.states import JobState
from reelforge.domain.upstream import UpstreamStatus, UpstreamVideo


def _video(state: JobState) -> VideoRecord:
    now = utcnow()
    return VideoRecord(
        id="video_1",
        owner_id="user_1",
        provider="fal",
        model="fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
        prompt="a kite",
        size="1280x720",
        seconds=5,
        cost_estimate=Decimal("0.35"),
        created_at=now,
        updated_at=now,
        job_state=state,
        provider_video_id="fal-ai/kling-video|r|1280x720|5",
    )


def _answer(status: UpstreamStatus, **said: Any) -> UpstreamVideo:
    return UpstreamVideo(
        id="u", status=status, model="m", size="1280x720", seconds="5", progress=0, **said
    )


def test_a_queued_job_keeps_its_position_and_no_message() -> None:
    video = replace(_video(JobState.QUEUED), vendor_message="old")
    said = vendor_said(video, _answer(UpstreamStatus.QUEUED, queue_position=3))
    assert (said.queue_position, said.vendor_message) == (3, None)
    assert "vendor" in effects(video, said).changed


def test_a_running_job_keeps_its_last_line_cleaned_and_bounded() -> None:
    video = replace(_video(JobState.IN_PROGRESS), queue_position=1)
    line = "step\x00 1 " + "x" * (2 * VENDOR_MESSAGE_LENGTH)
    said = vendor_said(video, _answer(UpstreamStatus.IN_PROGRESS, log_message=line))
    assert said.queue_position is None
    assert said.vendor_message is not None
    assert said.vendor_message.startswith("step 1 x")
    assert len(said.vendor_message) == VENDOR_MESSAGE_LENGTH
    # A poll with nothing new keeps the line the job last wrote.
    again = vendor_said(said, _answer(UpstreamStatus.IN_PROGRESS))
    assert again.vendor_message == said.vendor_message
    assert "vendor" not in effects(said, again).changed


def test_a_position_that_arrives_after_the_job_ran_is_not_kept() -> None:
    """Answers may arrive out of order: a running video stays running, without a position."""
    video = replace(_video(JobState.IN_PROGRESS), vendor_message="step 2")
    said = vendor_said(video, _answer(UpstreamStatus.QUEUED, queue_position=4))
    assert (said.queue_position, said.vendor_message) == (None, "step 2")
