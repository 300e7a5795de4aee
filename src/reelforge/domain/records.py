"""A video's whole row as a typed, immutable snapshot: what the engine and the lifecycle move."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from reelforge.domain.states import JobState
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import ArchivedObject

# The longest vendor log line a video keeps (the `videos.vendor_message` column's length).
VENDOR_MESSAGE_LENGTH = 500


@dataclass(frozen=True, slots=True)
class VideoRecord:
    """Field names are the `videos` table's column names, so a row and a record map one to one."""

    id: str
    owner_id: str
    provider: str
    model: str
    prompt: str
    size: str
    seconds: int
    cost_estimate: Decimal
    created_at: datetime
    updated_at: datetime
    job_state: JobState = JobState.ACCEPTED
    progress: int = 0
    provider_video_id: str | None = None
    input_reference_key: str | None = None
    input_reference_type: str | None = None
    remixed_from_video_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    archived_at: datetime | None = None
    deleted_at: datetime | None = None
    video_key: str | None = None
    video_bytes: int | None = None
    video_sha256: str | None = None
    thumbnail_key: str | None = None
    thumbnail_bytes: int | None = None
    thumbnail_sha256: str | None = None
    spritesheet_key: str | None = None
    spritesheet_bytes: int | None = None
    spritesheet_sha256: str | None = None
    cost_final: Decimal | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    next_check_at: datetime | None = None
    deadline_at: datetime | None = None
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    lease_version: int = 0
    last_error: str | None = None
    submitting_since: datetime | None = None
    polls: int = 0
    poll_errors: int = 0
    archive_failures: int = 0
    cleanup_attempts: int = 0
    # What the vendor last said about the job's progress (see `lifecycle.vendor_said`).
    queue_position: int | None = None
    vendor_message: str | None = None

    @property
    def archive(self) -> dict[Variant, ArchivedObject]:
        """The variants in our archive, by variant."""
        found = {}
        for variant in Variant:
            key, size, sha256 = (
                getattr(self, f"{variant.value}_{part}") for part in ("key", "bytes", "sha256")
            )
            if key:
                found[variant] = ArchivedObject(key=key, size=size, sha256=sha256)
        return found

    def archived(self, variant: Variant, stored: ArchivedObject) -> VideoRecord:
        """This record with `stored` as its `variant` in the archive."""
        prefix = variant.value
        changes: dict[str, Any] = {
            f"{prefix}_key": stored.key,
            f"{prefix}_bytes": stored.size,
            f"{prefix}_sha256": stored.sha256,
        }
        return replace(self, **changes)


COLUMNS = tuple(item.name for item in fields(VideoRecord))


def differences(before: VideoRecord, after: VideoRecord) -> dict[str, Any]:
    """The columns `after` changes, with their new values."""
    return {name: new for name in COLUMNS if (new := getattr(after, name)) != getattr(before, name)}
