"""The OpenAI-compatible gateway, `/v1/videos…`: the official SDKs work by base URL alone.

Callers authenticate with a Reelforge API key (or token) as `Authorization: Bearer`, and
every route goes through the same `Videos` service as the guide's /api, so ownership (another
user's video is a 404), quotas, budgets, costs, idempotency and the archive all apply. What
differs is only the wire format: the protocol's objects (`api/protocol.py`, which also
documents how `cancelled` and `expires_at` are mapped) and its error envelope
`{"error": {"message", "type", "param", "code"}}`, which `api/errors.py` renders for every
path under /v1.

Status codes follow the protocol where it differs from /api:

- Create and remix answer 200 (not 201), also when an Idempotency-Key replays a video.
- Content or a remix of a video that is not completed is a 400 `video_not_ready` (the
  service's 409), as reference §4.5 suggests and as our emulator answers. The SDK does not
  retry a 400; it would retry a 409 for nothing.
- An Idempotency-Key reused with another body stays a 409, with `x-should-retry: false` so
  the SDK does not repeat a request that can only fail the same way.
- Edits, extensions and characters are not offered yet: a 400 `unsupported_endpoint` that
  says so (not a 404, which would read as "no such video").

Requests are read as strictly as the protocol reads them (`api/requests.py`), and a video
that is not finished is answered with `openai-poll-after-ms`, which the SDKs' `poll()` uses
as its interval. A list's `after` may name a video deleted since: the list goes on from where
it was, so a client can delete what it pages through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from reelforge.api.auth import CurrentAccount
from reelforge.api.content import content_response
from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute
from reelforge.api.errors import ApiError, documented_protocol
from reelforge.api.protocol import (
    CONTENT_TYPES,
    CREATE_BODY,
    PENDING_STATUSES,
    REMIX_BODY,
    DeletedVideoResource,
    VideoListResource,
    VideoResource,
)
from reelforge.api.ratelimit import CreateRateLimit
from reelforge.api.requests import (
    CREATE_BODY_LIMIT,
    IdempotencyKey,
    read_new_video,
    read_remix_prompt,
)
from reelforge.domain.errors import ConflictError, NotReadyError
from reelforge.domain.upstream import POLL_AFTER_HEADER, Variant
from reelforge.domain.videos import MAX_LIST_LIMIT, Order, VideoView

router = APIRouter(prefix="/v1/videos", tags=["openai-compatible"], route_class=EdgeRoute)

DEFAULT_LIST_LIMIT = 20
NOT_READY = "video_not_ready"
UNSUPPORTED = "unsupported_endpoint"
# A video's status changes when the engine hears from upstream, which it polls seconds apart;
# a client polling faster than this learns nothing new.
POLL_AFTER_MS = 2000
# What routes the gateway doesn't offer yet answer, instead of advertising a 200.
_NOT_OFFERED: dict[str, Any] = {
    "status_code": 400,
    "response_model": None,
    "response_description": "Not offered by this gateway yet",
    "responses": documented_protocol(400, 401),
}


@router.post(
    "",
    openapi_extra=CREATE_BODY | CREATE_BODY_LIMIT,
    responses=documented_protocol(400, 401, 409, 429),
    summary="Create a video (OpenAI Videos protocol)",
)
async def create_video(
    request: Request,
    response: Response,
    account: CurrentAccount,
    runtime: RuntimeDep,
    admit: CreateRateLimit,
    idempotency_key: IdempotencyKey = None,
) -> VideoResource:
    new = await read_new_video(request, idempotency_key, strict=True)
    with _protocol_conflicts():
        view, _created = await runtime.videos.create(account, new, admit=admit)
    return _video(view, response)


@router.get(
    "",
    responses=documented_protocol(400, 401),
    summary="List your videos (OpenAI Videos protocol)",
)
async def list_videos(
    account: CurrentAccount,
    runtime: RuntimeDep,
    after: Annotated[
        str | None, Query(max_length=80, description="The `last_id` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=0, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT,
    order: Annotated[Order, Query(description="By creation time.")] = Order.DESC,
) -> VideoListResource:
    # The protocol allows limit=0: an empty page that still says whether videos follow.
    page = await runtime.videos.page(account, after=after, limit=max(limit, 1), order=order)
    if limit == 0:
        return VideoListResource.empty(has_more=bool(page.items))
    return VideoListResource.of(page)


@router.post(
    "/edits",
    **_NOT_OFFERED,
    summary="Edit a video (not offered by this gateway yet)",
)
async def edit_video(_account: CurrentAccount) -> None:
    raise _not_offered("Video edits", "remix a completed video instead")


@router.post(
    "/extensions",
    **_NOT_OFFERED,
    summary="Extend a video (not offered by this gateway yet)",
)
async def extend_video(_account: CurrentAccount) -> None:
    raise _not_offered("Video extensions", "create a longer video instead")


@router.post(
    "/characters",
    **_NOT_OFFERED,
    summary="Create a character (not offered by this gateway yet)",
)
async def create_character(_account: CurrentAccount) -> None:
    raise _not_offered("Characters", "describe the character in the prompt instead")


@router.get(
    "/characters/{character_id}",
    **_NOT_OFFERED,
    summary="Get a character (not offered by this gateway yet)",
)
async def get_character(character_id: str, _account: CurrentAccount) -> None:
    raise _not_offered("Characters", "describe the character in the prompt instead")


@router.get(
    "/{video_id}",
    responses=documented_protocol(400, 401, 404),
    summary="Get a video (OpenAI Videos protocol)",
)
async def retrieve_video(
    video_id: str, response: Response, account: CurrentAccount, runtime: RuntimeDep
) -> VideoResource:
    return _video(await runtime.videos.get(account, video_id), response)


@router.delete(
    "/{video_id}",
    responses=documented_protocol(400, 401, 404),
    summary="Delete a video and its archive (OpenAI Videos protocol)",
)
async def delete_video(
    video_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> DeletedVideoResource:
    """A video that is not finished yet is cancelled first, then deleted."""
    await runtime.videos.delete(account, video_id)
    return DeletedVideoResource(id=video_id)


@router.get(
    "/{video_id}/content",
    response_class=Response,
    responses={
        200: {"description": "The archived bytes", "content": CONTENT_TYPES},
        206: {"description": "The requested byte range"},
        307: {"description": "Redirect to a short-lived presigned URL (S3 storage)"},
        304: {"description": "Not modified (ETag)"},
        **documented_protocol(400, 401, 404, 416),
    },
    summary="Download a video, its thumbnail or its spritesheet (OpenAI Videos protocol)",
)
@router.head("/{video_id}/content", include_in_schema=False)
async def download_content(
    video_id: str,
    request: Request,
    account: CurrentAccount,
    runtime: RuntimeDep,
    variant: Variant = Variant.VIDEO,
) -> Response:
    with _protocol_conflicts():
        stored = await runtime.videos.archived(account, video_id, variant)
    return await content_response(runtime, request, stored, variant, video_id)


@router.post(
    "/{video_id}/remix",
    openapi_extra=REMIX_BODY,
    responses=documented_protocol(400, 401, 404, 409, 429),
    summary="Remix a completed video (OpenAI Videos protocol)",
)
async def remix_video(
    video_id: str,
    request: Request,
    response: Response,
    account: CurrentAccount,
    runtime: RuntimeDep,
    admit: CreateRateLimit,
    idempotency_key: IdempotencyKey = None,
) -> VideoResource:
    prompt = await read_remix_prompt(request)
    with _protocol_conflicts():
        view, _created = await runtime.videos.remix(
            account, video_id, prompt, idempotency_key, admit=admit
        )
    return _video(view, response)


def _video(view: VideoView, response: Response) -> VideoResource:
    """The protocol's object, with the poll interval while it is not finished."""
    video = VideoResource.of(view)
    if video.status in PENDING_STATUSES:
        response.headers[POLL_AFTER_HEADER] = str(POLL_AFTER_MS)
    return video


@contextmanager
def _protocol_conflicts() -> Iterator[None]:
    """The service's conflicts as the protocol answers them (see the module docstring)."""
    try:
        yield
    except NotReadyError as exc:
        raise ApiError(400, NOT_READY, exc.message) from None
    except ConflictError as exc:
        raise ApiError(
            409, "conflict", exc.message, field=exc.field, headers={"x-should-retry": "false"}
        ) from None


def _not_offered(what: str, instead: str) -> ApiError:
    return ApiError(400, UNSUPPORTED, f"{what} are not offered by this gateway yet; {instead}.")
