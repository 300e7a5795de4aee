"""`/api/files/…`: archived files by signed URL, with no credential or database lookup."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from reelforge.api.content import Content, deliver
from reelforge.api.direct import DirectRoute
from reelforge.api.errors import ApiError, documented
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import Variant
from reelforge.runtime import Runtime
from reelforge.services.links import FILES_PREFIX, LinkRefused
from reelforge.storage import ObjectNotFoundError

router = APIRouter(prefix=FILES_PREFIX, tags=["videos"], route_class=DirectRoute)

# `signed_file` reads its parameters itself; they are documented here.
_PARAMETERS = [
    {"name": "video_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {
        "name": "variant",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [variant.value for variant in Variant]},
    },
    {
        "name": "expires",
        "in": "query",
        "required": True,
        "description": "The Unix time the URL expires at, as signed",
        "schema": {"type": "string"},
    },
    {
        "name": "signature",
        "in": "query",
        "required": True,
        "description": "The server's signature of the path and `expires`",
        "schema": {"type": "string"},
    },
]


@router.get(
    "/{video_id}/{variant}",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}, "image/webp": {}, "image/jpeg": {}}},
        206: {"description": "The requested byte range"},
        304: {"description": "Not modified (ETag)"},
        307: {"description": "Redirect to a short-lived presigned URL (S3 storage)"},
        **documented(403, 404, 416),
    },
    summary="Download an archived file by the signed URL `file_url` or `downloads` gave",
    openapi_extra={"parameters": _PARAMETERS},
)
@router.head("/{video_id}/{variant}", include_in_schema=False)
async def signed_file(request: Request) -> Response:
    video_id = request.path_params["video_id"]
    try:
        variant = Variant(request.path_params["variant"])
    except ValueError:
        raise ApiError(
            404, "not_found", "No such file: the variants are video, thumbnail and spritesheet"
        ) from None
    query = request.query_params
    runtime: Runtime = request.app.state.runtime
    now = utcnow()
    try:
        granted = runtime.links.verify(
            video_id, variant, query.get("expires"), query.get("signature"), now
        )
    except LinkRefused as refused:
        raise ApiError(403, "forbidden", refused.message, field=refused.field) from None
    # The URL names one immutable file until it expires: caches may keep it that long.
    remaining = granted.expires - int(now.timestamp())
    content = Content(
        key=granted.key,
        variant=variant,
        filename=granted.filename,
        cache_control=f"private, max-age={remaining}, immutable",
    )
    try:
        return await deliver(runtime, request, content)
    except ObjectNotFoundError:
        # Unlike an owner's download, no row vouches for the file: it was deleted since.
        raise ApiError(404, "not_found", f"No {variant} of video {video_id}") from None
