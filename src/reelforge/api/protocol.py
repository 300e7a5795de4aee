"""The OpenAI Videos protocol's shapes on /v1: the `Video` object, the list, the deletion.

Field names, order, types and nullability follow reference/openai-videos-api.md §2, so the
official SDK (and strict clients validating against the spec) read our answers unchanged.
Two Reelforge facts have no protocol equivalent and are mapped here, in one place:

- Status `cancelled` (a user stopped the video) is not a protocol status. It is answered as
  `failed` with `error = {"code": "cancelled", "message": …}`: the job ended without output,
  which is what `failed` tells a client, and the code says why.
- `expires_at` is always null. Upstream outputs expire about an hour after completion, but
  Reelforge serves every finished video from its own archive, which does not expire: a video
  stays downloadable until it is deleted. Null is the protocol's "no expiry" (it is nullable).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reelforge.domain.states import VideoStatus
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import Page, VideoView

ProtocolStatus = Literal["queued", "in_progress", "completed", "failed"]
PENDING_STATUSES: frozenset[ProtocolStatus] = frozenset({"queued", "in_progress"})

CANCELLED_CODE = "cancelled"
FAILED_CODE = "video_failed"

# Every key of a protocol object is required (nullable ones included), so the served schema
# says so too, defaults and all.
_PROTOCOL = ConfigDict(json_schema_serialization_defaults_required=True)


class VideoCreateError(BaseModel):
    """Why a video failed (`Video.error`)."""

    model_config = _PROTOCOL

    code: str
    message: str


class VideoResource(BaseModel):
    """The protocol's `Video` object, all 13 keys in the observed order."""

    model_config = _PROTOCOL

    id: str
    object: Literal["video"] = "video"
    created_at: int = Field(description="Unix seconds.")
    status: ProtocolStatus = Field(
        description="A cancelled video is `failed` with error code `cancelled`."
    )
    completed_at: int | None = Field(description="Unix seconds, once the video finished.")
    error: VideoCreateError | None = Field(description="Set when `status` is `failed`.")
    expires_at: int | None = Field(
        description="Always null: Reelforge's archive keeps the content until it is deleted."
    )
    model: str
    progress: int = Field(ge=0, le=100)
    prompt: str | None
    remixed_from_video_id: str | None
    seconds: str = Field(description="Length in seconds, as a string.")
    size: str = Field(description="WIDTHxHEIGHT.")

    @classmethod
    def of(cls, view: VideoView) -> VideoResource:
        status, error = status_and_error(view)
        return cls(
            id=view.id,
            created_at=_unix(view.created_at),
            status=status,
            completed_at=_unix(view.completed_at) if view.completed_at else None,
            error=error,
            expires_at=None,
            model=view.model,
            progress=100 if status == "completed" else max(0, min(view.progress, 100)),
            prompt=view.prompt,
            remixed_from_video_id=view.remixed_from_video_id,
            seconds=view.seconds,
            size=view.size,
        )


class VideoListResource(BaseModel):
    """One page of videos; pass `last_id` as `after` for the next while `has_more`."""

    model_config = _PROTOCOL

    object: Literal["list"] = "list"
    data: list[VideoResource]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def of(cls, page: Page) -> VideoListResource:
        return cls(
            data=[VideoResource.of(view) for view in page.items],
            first_id=page.first_id,
            last_id=page.last_id,
            has_more=page.has_more,
        )

    @classmethod
    def empty(cls, *, has_more: bool) -> VideoListResource:
        """The answer to `limit=0`: no items, and whether there would have been any."""
        return cls(data=[], first_id=None, last_id=None, has_more=has_more)


class DeletedVideoResource(BaseModel):
    model_config = _PROTOCOL

    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class ImageUrlReference(BaseModel):
    image_url: str = Field(
        description="A base64 `data:` URL (JPEG, PNG or WebP) exactly the video's size; "
        "https URLs and `file_id` references are not accepted.",
        max_length=20_971_520,
    )


class CreateVideoJsonBody(BaseModel):
    """`POST /v1/videos` as JSON (the SDK itself always sends multipart)."""

    prompt: str = Field(min_length=1, pattern=r"\S", description="Not blank.")
    model: str | None = Field(default=None, description="Defaults to the provider's default.")
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, e.g. 1280x720.")
    seconds: str | None = Field(default=None, description='"4", "8", "12", "16" or "20".')
    input_reference: ImageUrlReference | None = Field(default=None, description="The first frame.")


class RemixVideoBody(BaseModel):
    prompt: str = Field(
        min_length=1, pattern=r"\S", description="How the remix changes the video; not blank."
    )


def _multipart(properties: dict[str, Any]) -> dict[str, Any]:
    return {"schema": {"type": "object", "required": ["prompt"], "properties": properties}}


CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": _multipart(
                {
                    "prompt": {"type": "string", "minLength": 1, "pattern": r"\S"},
                    "model": {"type": "string"},
                    "size": {"type": "string"},
                    "seconds": {"type": "string"},
                    "input_reference": {
                        "type": "string",
                        "format": "binary",
                        "description": "The first frame (JPEG, PNG or WebP), exactly `size`.",
                    },
                    "input_reference[image_url]": {
                        "type": "string",
                        "description": "Instead of a file: a base64 `data:` URL.",
                    },
                }
            ),
            "application/json": {"schema": CreateVideoJsonBody.model_json_schema()},
        },
    }
}

REMIX_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RemixVideoBody.model_json_schema()},
            "multipart/form-data": _multipart(
                {"prompt": {"type": "string", "minLength": 1, "pattern": r"\S"}}
            ),
        },
    }
}

CONTENT_TYPES: dict[str, Any] = {
    variant.default_content_type: {"schema": {"type": "string", "format": "binary"}}
    for variant in Variant
}


def status_and_error(view: VideoView) -> tuple[ProtocolStatus, VideoCreateError | None]:
    match view.status:
        case VideoStatus.CANCELLED:
            message = view.error_message or "The video was cancelled before it finished."
            return "failed", VideoCreateError(code=CANCELLED_CODE, message=message)
        case VideoStatus.FAILED:
            return "failed", VideoCreateError(
                code=view.error_code or FAILED_CODE,
                message=view.error_message or "The video failed.",
            )
        case VideoStatus.QUEUED:
            return "queued", None
        case VideoStatus.IN_PROGRESS:
            return "in_progress", None
        case VideoStatus.COMPLETED:
            return "completed", None


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())
