"""Bodies of the guide's /api: the `{"success": …, "data": …}` envelope and what goes in it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from reelforge.api.protocol import ProtocolStatus, status_and_error
from reelforge.domain.accounts import Account, KeyInfo
from reelforge.domain.catalog import Quality, quality_of
from reelforge.domain.quotas import MAX_VIDEOS_PER_PERIOD, QuotaUsage
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import EventView, VideoView
from reelforge.services.lineage import Lineage, LineageNode
from reelforge.services.links import FileLinks

T = TypeVar("T")

CENT = Decimal("0.01")
# Amounts in USD, always to the cent on the wire ("0.40", not "0.4000" as the database holds).
Money = Annotated[
    Decimal, PlainSerializer(lambda amount: str(amount.quantize(CENT)), return_type=str)
]


@overload
def unix(moment: datetime) -> int: ...
@overload
def unix(moment: None) -> None: ...
def unix(moment: datetime | None) -> int | None:
    """A moment as Unix seconds, as the guide's types and the protocol carry times."""
    return None if moment is None else int(moment.timestamp())


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T


class VideoError(BaseModel):
    code: str = Field(description="`cancelled` for a video its owner cancelled.")
    message: str


class Cost(BaseModel):
    currency: str = "USD"
    estimate: Money
    final: Money | None


class VideoOut(BaseModel):
    """The guide's `VideoJob`: the protocol's `Video` with its `quality` and `file_url`, plus
    what only Reelforge knows (provider, cost, archive). Times are Unix seconds."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str
    object: Literal["video"] = "video"
    status: ProtocolStatus = Field(
        description="queued, in_progress, completed or failed; a cancelled video is `failed` "
        "with error code `cancelled`, as on /v1, so a client polling for an end stops."
    )
    progress: int
    prompt: str
    provider: str
    model: str
    quality: Quality | None = Field(
        description="The model's tier: standard (sora-2) or high (sora-2-pro)."
    )
    size: str
    seconds: str
    remixed_from_video_id: str | None
    error: VideoError | None = Field(description="Set when `status` is `failed`.")
    cost: Cost
    created_at: int = Field(description="Unix seconds.")
    completed_at: int | None = Field(description="Unix seconds, once the video finished.")
    expires_at: int | None = Field(
        description="Always null: the archive keeps the video until it is deleted."
    )
    archived_at: int | None = Field(description="Unix seconds, once the video is archived.")
    file_url: str | None = Field(
        description="A signed URL of the video once it is completed (this server's path): it "
        "needs no credential and expires (`expires`, Unix seconds); read the video again for "
        "a fresh one. `/api/videos/{id}/download` serves the same with a credential."
    )
    downloads: dict[str, str] = Field(
        description="Signed download URL by variant, once the video is completed."
    )
    queue_position: int | None = Field(
        description="Where the job waits in its vendor's queue (0 is next), while it is queued "
        "and the vendor says (fal does)."
    )
    vendor_message: str | None = Field(
        description="The vendor's latest log line while the job runs, where the vendor shares "
        "its logs (fal does); at most 500 characters."
    )

    @classmethod
    def of(cls, view: VideoView, links: FileLinks) -> VideoOut:
        status, error = status_and_error(view)
        downloads = {
            variant.value: links.url(view.id, variant)
            for variant in Variant
            if variant in view.archive and status == "completed"
        }
        return cls(
            id=view.id,
            status=status,
            progress=view.progress,
            prompt=view.prompt,
            provider=view.provider,
            model=view.model,
            quality=quality_of(view.provider, view.model),
            size=view.size,
            seconds=view.seconds,
            remixed_from_video_id=view.remixed_from_video_id,
            error=VideoError(code=error.code, message=error.message) if error else None,
            cost=Cost(estimate=view.cost_estimate, final=view.cost_final),
            created_at=unix(view.created_at),
            completed_at=unix(view.completed_at),
            expires_at=None,
            archived_at=unix(view.archived_at),
            file_url=downloads.get(Variant.VIDEO.value),
            downloads=downloads,
            queue_position=view.queue_position,
            vendor_message=view.vendor_message,
        )


class LineageNodeOut(BaseModel):
    video: VideoOut
    children: list[LineageNodeOut]

    @classmethod
    def of(cls, node: LineageNode, links: FileLinks) -> LineageNodeOut:
        return cls(
            video=VideoOut.of(node.video, links),
            children=[cls.of(child, links) for child in node.children],
        )


class LineageOut(BaseModel):
    focus_id: str = Field(description="The video asked about.")
    truncated: bool = Field(description="The tree was cut at its size or depth limit.")
    root: LineageNodeOut = Field(description="The oldest ancestor you can see.")

    @classmethod
    def of(cls, lineage: Lineage, links: FileLinks) -> LineageOut:
        return cls(
            focus_id=lineage.focus_id,
            truncated=lineage.truncated,
            root=LineageNodeOut.of(lineage.root, links),
        )


class Pagination(BaseModel):
    """Both ways of paging: by position (`offset`, as the guide does) or by `cursor`."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    limit: int
    offset: int = Field(description="How many were skipped (after the cursor, if one was given).")
    more: bool = Field(serialization_alias="hasMore", description="Whether more videos follow.")
    has_more: bool = Field(description="The same as `hasMore`.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class VideoPage(BaseModel):
    success: bool = True
    data: list[VideoOut]
    pagination: Pagination


# What the service refuses, documented: the prompt must hold a character other than spaces.
NON_BLANK: dict[str, Any] = {"minLength": 1, "pattern": "\\S"}


class CreateVideoIn(BaseModel):
    """The JSON create body; a field not listed here is refused (400 `unknown_parameter`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="What the video shows; not blank.", json_schema_extra=NON_BLANK)
    model: str | None = Field(
        default=None,
        description="Defaults to the model of the `quality` asked for, else the provider's "
        "default.",
    )
    quality: Quality | None = Field(
        default=None,
        description="standard (sora-2) or high (sora-2-pro); chooses the model when `model` "
        "is not given, and must agree with it when it is.",
    )
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, e.g. 1280x720.")
    seconds: str | int | None = Field(default=None, description="Length: 4, 8, 12, 16 or 20.")
    input_reference: str | None = Field(
        default=None,
        description="Optional first frame as a base64 `data:` URL (JPEG, PNG or WebP), exactly "
        "the video's size. Multipart requests send it as a file instead.",
    )


class RemixIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="How the remix changes the video.", json_schema_extra=NON_BLANK)


class RerunIn(BaseModel):
    model: str = Field(description="The model to run the same prompt, size and length on.")


class EstimateOut(BaseModel):
    provider: str
    model: str
    quality: Quality
    size: str
    seconds: str
    cost: Money
    currency: str = "USD"


class EventOut(BaseModel):
    id: int
    kind: str
    actor: str | None
    data: dict[str, object]
    created_at: int = Field(description="Unix seconds.")

    @classmethod
    def of(cls, event: EventView) -> EventOut:
        return cls(
            id=event.id,
            kind=event.kind,
            actor=event.actor,
            data=event.data,
            created_at=unix(event.created_at),
        )


class AccountOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            email=account.email,
            display_name=account.display_name,
            role=account.role.value,
            disabled=account.disabled,
            created_at=account.created_at,
        )


class UsageOut(BaseModel):
    max_videos: int | None
    period_days: int
    period_started_at: datetime
    period_ends_at: datetime
    videos_used: int
    videos_left: int | None
    monthly_budget: Money | None
    month_spend: Money
    budget_left: Money | None

    @classmethod
    def of(cls, usage: QuotaUsage) -> UsageOut:
        return cls(
            max_videos=usage.policy.max_videos,
            period_days=usage.policy.period_days,
            period_started_at=usage.period_started_at,
            period_ends_at=usage.period_ends_at,
            videos_used=usage.videos_used,
            videos_left=usage.videos_left,
            monthly_budget=usage.policy.monthly_budget,
            month_spend=usage.month_spend,
            budget_left=usage.budget_left,
        )


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_videos: int | None = Field(
        ge=0, le=MAX_VIDEOS_PER_PERIOD, description="Videos per period; null for unlimited."
    )
    period_days: int = Field(default=30, ge=1, le=366)
    monthly_budget: Decimal | None = Field(
        ge=0, max_digits=12, decimal_places=4, description="USD per month; null for unlimited."
    )


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: KeyInfo) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=f"rf_{key.prefix}",
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class NewKeyOut(KeyOut):
    key: str = Field(description="The key itself; shown only in this response.")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    password: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
