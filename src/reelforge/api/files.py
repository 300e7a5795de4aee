"""`/api/files/…`: archived files by signed URL, with no credential or database lookup."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from reelforge.api.content import Content, deliver
from reelforge.api.deps import RuntimeDep
from reelforge.api.errors import ApiError, documented
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import Variant
from reelforge.services.links import FILES_PREFIX, LinkRefused
from reelforge.storage import ObjectNotFoundError

router = APIRouter(prefix=FILES_PREFIX, tags=["videos"])


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
)
@router.head("/{video_id}/{variant}", include_in_schema=False)
async def signed_file(
    video_id: str,
    variant: Variant,
    request: Request,
    runtime: RuntimeDep,
    expires: str | None = None,
    signature: str | None = None,
) -> Response:
    now = utcnow()
    try:
        granted = runtime.links.verify(video_id, variant, expires, signature, now)
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
