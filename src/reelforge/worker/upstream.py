"""Asking upstream for a video's job: starting it, and finding one whose create went unanswered."""

from __future__ import annotations

from datetime import timedelta

from reelforge.domain.records import VideoRecord
from reelforge.domain.upstream import CreateRequest, ImageBytes, ProviderError, UpstreamVideo
from reelforge.providers.base import Provider
from reelforge.services.jobs import Jobs
from reelforge.storage import Storage

# How far back (before our SUBMITTING mark) an upstream job may be and still be ours.
RECONCILE_SLACK = timedelta(minutes=2)
RECONCILE_PAGES = 5


async def start_upstream(
    provider: Provider, storage: Storage, jobs: Jobs, video: VideoRecord
) -> UpstreamVideo:
    """Create (or remix) the video's job upstream: the one call that is not idempotent."""
    if video.remixed_from_video_id is not None:
        parent = await jobs.video(video.remixed_from_video_id)
        if parent is None or parent.provider_video_id is None:
            raise ProviderError("the parent video has no upstream job to remix", status=400)
        return await provider.remix(parent.provider_video_id, video.prompt)
    reference = None
    if video.input_reference_key is not None:
        data = await storage.read(video.input_reference_key)
        reference = ImageBytes(data=data, content_type=video.input_reference_type or "")
    return await provider.create(
        CreateRequest(
            prompt=video.prompt,
            model=video.model,
            size=video.size,
            seconds=str(video.seconds),
            input_reference=reference,
        )
    )


async def find_upstream(provider: Provider, jobs: Jobs, video: VideoRecord) -> UpstreamVideo | None:
    """The upstream job a create we never heard back from made, if upstream has it: the newest
    job for the same request, made since shortly before we sent it, that no video has yet."""
    since = video.submitting_since or video.created_at
    after = None
    for _ in range(RECONCILE_PAGES):
        page = await provider.list(after=after, limit=100, order="desc")
        for item in page.items:
            if item.created_at is not None and item.created_at < since - RECONCILE_SLACK:
                return None
            if _same_request(item, video) and not await jobs.upstream_job_taken(
                provider.name, item.id
            ):
                return item
        if not page.has_more or page.last_id is None:
            return None
        after = page.last_id
    return None


def _same_request(item: UpstreamVideo, video: VideoRecord) -> bool:
    return (
        item.prompt == video.prompt
        and item.size == video.size
        and item.seconds == str(video.seconds)
    )
