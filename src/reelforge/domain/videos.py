"""Videos as rules: what a valid request is, what it costs, and the view every interface shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from reelforge.domain.catalog import Feature, ModelSpec, ProviderSpec
from reelforge.domain.errors import InputError
from reelforge.domain.states import JobState, VideoStatus
from reelforge.domain.upstream import Variant

DEFAULT_MAX_PROMPT_LENGTH = 1000
MAX_LIST_LIMIT = 100
# Video counts toward a user's quota unless it failed on our side or upstream before generating.
UNCOUNTED_STATES = frozenset({JobState.FAILED, JobState.EXPIRED})


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class EventKind(StrEnum):
    CREATED = "created"
    REMIXED = "remixed"
    SUBMITTED = "submitted"
    PROGRESS = "progress"
    COMPLETED = "completed"
    ARCHIVED = "archived"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    WEBHOOK_RECEIVED = "webhook_received"


@dataclass(frozen=True)
class VideoRequest:
    """A create request checked against the catalog, with every default filled in."""

    prompt: str
    model: ModelSpec
    size: str
    seconds: str

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])

    @property
    def estimate(self) -> Decimal:
        return self.model.price(self.size, self.seconds)


def check_prompt(prompt: object, max_length: int) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt", "is required and must not be blank")
    if len(prompt) > max_length:
        raise InputError("prompt", f"must be at most {max_length} characters (got {len(prompt)})")
    return prompt


def video_request(
    spec: ProviderSpec,
    *,
    prompt: object,
    model: str | None,
    size: str | None,
    seconds: str | int | None,
    max_prompt_length: int,
    quality: str | None = None,
) -> VideoRequest:
    """Check a request the way the edge must: the prompt first, then model (or quality), size
    and seconds."""
    checked = check_prompt(prompt, max_prompt_length)
    model_spec, chosen_size, chosen_seconds = spec.resolve(model, size, seconds, quality)
    return VideoRequest(prompt=checked, model=model_spec, size=chosen_size, seconds=chosen_seconds)


def require_feature(model: ModelSpec, feature: Feature, field: str) -> None:
    """An InputError naming `field` unless `model` can do `feature` (say, take an image)."""
    if not model.supports(feature):
        can = ", ".join(sorted(model.features)) or "text to video only"
        raise InputError(field, f"{model.name} cannot do {feature.value} (it can do: {can})")


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class VideoView:
    """A video as its owner (or an admin) may see it."""

    id: str
    owner_id: str
    provider: str
    model: str
    prompt: str
    size: str
    seconds: str
    job_state: JobState
    progress: int
    error_code: str | None
    error_message: str | None
    remixed_from_video_id: str | None
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None
    archived_at: datetime | None
    cost_estimate: Decimal
    cost_final: Decimal | None
    archive: dict[Variant, ArchivedObject]
    # What the vendor last said about the job (a place in its queue, its latest log line).
    queue_position: int | None = None
    vendor_message: str | None = None

    @property
    def status(self) -> VideoStatus:
        return self.job_state.public_status


@dataclass(frozen=True)
class EventView:
    id: int
    video_id: str
    kind: str
    actor: str | None
    data: dict[str, object]
    created_at: datetime


@dataclass(frozen=True)
class Page:
    items: list[VideoView]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return self.items[0].id if self.items else None

    @property
    def last_id(self) -> str | None:
        return self.items[-1].id if self.items else None
