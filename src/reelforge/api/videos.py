"""The guide's app API, `/api/videos…`, plus estimate, cancel, events and content variants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from reelforge.api.auth import CurrentAccount
from reelforge.api.content import content_response
from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute
from reelforge.api.errors import documented
from reelforge.api.ratelimit import CreateRateLimit
from reelforge.api.requests import (
    CREATE_BODY_LIMIT,
    GUIDE_FIELDS,
    IdempotencyKey,
    read_new_video,
)
from reelforge.api.schemas import (
    CreateVideoIn,
    Envelope,
    EstimateOut,
    EventOut,
    LineageOut,
    Pagination,
    RemixIn,
    RerunIn,
    VideoOut,
    VideoPage,
)
from reelforge.domain.catalog import Quality
from reelforge.domain.errors import InputError
from reelforge.domain.states import VideoStatus
from reelforge.domain.upstream import Variant
from reelforge.domain.videos import Order

_STATUSES = sorted(status.value for status in VideoStatus)

router = APIRouter(prefix="/api/videos", tags=["videos"], route_class=EdgeRoute)

# Far beyond any one account's videos, and inside a 64-bit OFFSET on both databases.
MAX_OFFSET = 1_000_000_000


# Routes are tried in the order they are defined (FastAPI tries each included router's routes
# twice per request): the read clients poll comes first.
@router.get("/{video_id}", responses=documented(401, 404), summary="Get a video")
async def get_video(
    video_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[VideoOut]:
    return Envelope(data=VideoOut.of(await runtime.videos.get(account, video_id), runtime.links))


_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CreateVideoIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["prompt"],
                    "additionalProperties": False,
                    "properties": {
                        "prompt": {"type": "string", "minLength": 1, "pattern": r"\S"},
                        "model": {"type": "string"},
                        "quality": {"type": "string", "enum": list(Quality)},
                        "size": {"type": "string"},
                        "seconds": {"type": "string"},
                        "input_reference": {"type": "string", "format": "binary"},
                        "input_reference[image_url]": {
                            "type": "string",
                            "description": "Instead of a file: a base64 `data:` URL.",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=201,
    openapi_extra=_CREATE_BODY | CREATE_BODY_LIMIT,
    responses=documented(400, 401, 409, 422, 429),
    summary="Create a video",
)
async def create_video(
    request: Request,
    response: Response,
    account: CurrentAccount,
    runtime: RuntimeDep,
    admit: CreateRateLimit,
    idempotency_key: IdempotencyKey = None,
) -> Envelope[VideoOut]:
    new = await read_new_video(request, idempotency_key, accepted=GUIDE_FIELDS)
    view, created = await runtime.videos.create(account, new, admit=admit)
    if not created:
        response.status_code = 200
    return Envelope(data=VideoOut.of(view, runtime.links))


@router.post(
    "/estimate",
    openapi_extra=_CREATE_BODY | CREATE_BODY_LIMIT,
    responses=documented(400, 401, 422),
    summary="Price a video before creating it",
)
async def estimate_video(
    request: Request, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[EstimateOut]:
    checked = runtime.videos.check(await read_new_video(request, None, accepted=GUIDE_FIELDS))
    return Envelope(
        data=EstimateOut(
            provider=runtime.videos.routes.spec_for(checked.model.name).name,
            model=checked.model.name,
            quality=checked.model.quality,
            size=checked.size,
            seconds=checked.seconds,
            cost=checked.estimate,
        )
    )


@router.get("", responses=documented(400, 401, 422), summary="List your videos")
async def list_videos(
    account: CurrentAccount,
    runtime: RuntimeDep,
    status: Annotated[
        list[str] | None,
        Query(
            description="Filter by status; `failed` includes the cancelled videos.",
            json_schema_extra={"items": {"type": "string", "enum": _STATUSES}},
        ),
    ] = None,
    model: Annotated[str | None, Query(max_length=80)] = None,
    provider: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the prompt.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=80, description="The `next_cursor` of the page before.")
    ] = None,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Skip this many (after `cursor`, if given).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Order = Order.DESC,
) -> VideoPage:
    if status and VideoStatus.FAILED in status:
        # A cancelled video reads as failed here, so it is found as one too.
        status = [*status, VideoStatus.CANCELLED]
    try:
        page = await runtime.videos.page(
            account,
            after=cursor,
            offset=offset,
            limit=limit,
            order=order,
            status=status,
            model=model,
            provider=provider,
            text=q,
        )
    except InputError as exc:
        # The service speaks of `after`; this route's parameter is `cursor`.
        raise InputError("cursor" if exc.field == "after" else exc.field, exc.message) from None
    return VideoPage(
        data=[VideoOut.of(view, runtime.links) for view in page.items],
        pagination=Pagination(
            limit=limit,
            offset=offset,
            more=page.has_more,
            has_more=page.has_more,
            next_cursor=page.last_id if page.has_more else None,
        ),
    )


@router.delete("/{video_id}", responses=documented(401, 404), summary="Delete a video")
async def delete_video(
    video_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[dict[str, str | bool]]:
    await runtime.videos.delete(account, video_id)
    return Envelope(data={"id": video_id, "deleted": True})


@router.post(
    "/{video_id}/remix",
    status_code=201,
    responses=documented(400, 401, 404, 409, 422, 429),
    summary="Remix a completed video",
)
async def remix_video(
    video_id: str,
    body: RemixIn,
    response: Response,
    account: CurrentAccount,
    runtime: RuntimeDep,
    admit: CreateRateLimit,
    idempotency_key: IdempotencyKey = None,
) -> Envelope[VideoOut]:
    view, created = await runtime.videos.remix(
        account, video_id, body.prompt, idempotency_key, admit=admit
    )
    if not created:
        response.status_code = 200
    return Envelope(data=VideoOut.of(view, runtime.links))


@router.post(
    "/{video_id}/rerun",
    status_code=201,
    responses=documented(400, 401, 404, 409, 422, 429),
    summary="Run a video's prompt again on another model",
)
async def rerun_video(
    video_id: str,
    body: RerunIn,
    response: Response,
    account: CurrentAccount,
    runtime: RuntimeDep,
    _limit: CreateRateLimit,
    idempotency_key: IdempotencyKey = None,
) -> Envelope[VideoOut]:
    view, created = await runtime.videos.rerun(account, video_id, body.model, idempotency_key)
    if not created:
        response.status_code = 200
    return Envelope(data=VideoOut.of(view, runtime.links))


@router.post("/{video_id}/cancel", responses=documented(401, 404), summary="Cancel a video")
async def cancel_video(
    video_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[VideoOut]:
    return Envelope(data=VideoOut.of(await runtime.videos.cancel(account, video_id), runtime.links))


@router.get("/{video_id}/events", responses=documented(401, 404), summary="A video's audit trail")
async def video_events(
    video_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[list[EventOut]]:
    events = await runtime.videos.events(account, video_id)
    return Envelope(data=[EventOut.of(event) for event in events])


@router.get("/{video_id}/lineage", responses=documented(401, 404), summary="Parents and remixes")
async def video_lineage(
    video_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[LineageOut]:
    return Envelope(data=LineageOut.of(await runtime.lineages.of(account, video_id), runtime.links))


@router.get(
    "/{video_id}/download",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}}},
        206: {"description": "The requested byte range"},
        307: {"description": "Redirect to a short-lived presigned URL (S3 storage)"},
        304: {"description": "Not modified (ETag)"},
        **documented(401, 404, 409, 416),
    },
    summary="Download a video, its thumbnail or its spritesheet",
)
@router.head("/{video_id}/download", include_in_schema=False)
async def download_video(
    video_id: str,
    request: Request,
    account: CurrentAccount,
    runtime: RuntimeDep,
    variant: Variant = Variant.VIDEO,
) -> Response:
    stored = await runtime.videos.archived(account, video_id, variant)
    return await content_response(runtime, request, stored, variant, video_id)
