"""Bodies of the guide's /api: the `{"success": …, "data": …}` envelope and what goes in it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, PlainSerializer

from reelforge.domain.accounts import Account, KeyInfo
from reelforge.domain.quotas import QuotaUsage
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import EventView, VideoView

T = TypeVar("T")

CENT = Decimal("0.01")
# Amounts in USD, always to the cent on the wire ("0.40", not "0.4000" as the database holds).
Money = Annotated[
    Decimal, PlainSerializer(lambda amount: str(amount.quantize(CENT)), return_type=str)
]


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T


class VideoError(BaseModel):
    code: str | None
    message: str | None


class Cost(BaseModel):
    currency: str = "USD"
    estimate: Money
    final: Money | None


class VideoOut(BaseModel):
    id: str
    status: str = Field(description="queued, in_progress, completed, failed or cancelled")
    progress: int
    prompt: str
    provider: str
    model: str
    size: str
    seconds: str
    remixed_from_video_id: str | None
    error: VideoError | None
    cost: Cost
    created_at: datetime
    completed_at: datetime | None
    archived_at: datetime | None
    downloads: dict[str, str] = Field(
        description="Download URL by variant, once the video is completed."
    )

    @classmethod
    def of(cls, view: VideoView) -> VideoOut:
        base = f"/api/videos/{view.id}/download"
        return cls(
            id=view.id,
            status=view.status.value,
            progress=view.progress,
            prompt=view.prompt,
            provider=view.provider,
            model=view.model,
            size=view.size,
            seconds=view.seconds,
            remixed_from_video_id=view.remixed_from_video_id,
            error=VideoError(code=view.error_code, message=view.error_message)
            if view.error_code or view.error_message
            else None,
            cost=Cost(estimate=view.cost_estimate, final=view.cost_final),
            created_at=view.created_at,
            completed_at=view.completed_at,
            archived_at=view.archived_at,
            downloads={
                variant.value: f"{base}?variant={variant.value}"
                for variant in Variant
                if variant in view.archive and view.status == "completed"
            },
        )


class Pagination(BaseModel):
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class VideoPage(BaseModel):
    success: bool = True
    data: list[VideoOut]
    pagination: Pagination


# What the service refuses, documented: the prompt must hold a character other than spaces.
NON_BLANK: dict[str, Any] = {"minLength": 1, "pattern": "\\S"}


class CreateVideoIn(BaseModel):
    prompt: str = Field(description="What the video shows.", json_schema_extra=NON_BLANK)
    model: str | None = Field(default=None, description="Defaults to the provider's default.")
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, e.g. 1280x720.")
    seconds: str | int | None = Field(default=None, description="Length: 4, 8, 12, 16 or 20.")
    input_reference: str | None = Field(
        default=None,
        description="Optional first frame as a base64 `data:` URL (JPEG, PNG or WebP), exactly "
        "the video's size. Multipart requests send it as a file instead.",
    )


class RemixIn(BaseModel):
    prompt: str = Field(description="How the remix changes the video.", json_schema_extra=NON_BLANK)


class EstimateOut(BaseModel):
    provider: str
    model: str
    size: str
    seconds: str
    cost: Money
    currency: str = "USD"


class EventOut(BaseModel):
    id: int
    kind: str
    actor: str | None
    data: dict[str, object]
    created_at: datetime

    @classmethod
    def of(cls, event: EventView) -> EventOut:
        return cls(
            id=event.id,
            kind=event.kind,
            actor=event.actor,
            data=event.data,
            created_at=event.created_at,
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
    max_videos: int | None = Field(ge=0, description="Videos per period; null for unlimited.")
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
    name: str = Field(default="", max_length=200)


class Credentials(BaseModel):
    email: str
    password: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
