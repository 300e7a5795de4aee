"""How each fal model in the catalog takes Reelforge's fields: endpoint ids and input names.

fal's models share the queue protocol but not their inputs: duration is "8s" for Veo, "5" for
Kling and Seedance, the integer 6 for LTX; some take a resolution, some only an aspect ratio;
image-to-video is a sibling endpoint with an `image_url`. docs/providers.md cites each schema.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reelforge.domain import live_models as m
from reelforge.domain.upstream import CreateRequest, ImageBytes, ImageUrl, ProviderRejected

Duration = Callable[[str], object]


def _with_s(seconds: str) -> object:
    return f"{seconds}s"


def _as_text(seconds: str) -> object:
    return seconds


def _as_int(seconds: str) -> object:
    return int(seconds)


_ASPECT = {
    "1280x720": "16:9",
    "1920x1080": "16:9",
    "720x1280": "9:16",
    "1080x1920": "9:16",
}
_RESOLUTION = {"1280x720": "720p", "720x1280": "720p", "1920x1080": "1080p", "1080x1920": "1080p"}


@dataclass(frozen=True)
class FalEndpoint:
    text: str
    duration: Duration
    image: str | None = None
    resolution: bool = False
    # Kling's image-to-video takes its shape from the image and has no aspect_ratio input.
    image_aspect_ratio: bool = True


ENDPOINTS: Mapping[str, FalEndpoint] = {
    m.FAL_VEO_3_1.name: FalEndpoint(
        text="fal-ai/veo3.1",
        image="fal-ai/veo3.1/image-to-video",
        duration=_with_s,
        resolution=True,
    ),
    m.FAL_VEO_3_FAST.name: FalEndpoint(text="fal-ai/veo3/fast", duration=_with_s),
    m.FAL_KLING_2_5_TURBO_PRO.name: FalEndpoint(
        text="fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
        image="fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
        duration=_as_text,
        image_aspect_ratio=False,
    ),
    m.FAL_SEEDANCE_1_PRO_FAST.name: FalEndpoint(
        text="fal-ai/bytedance/seedance/v1/pro/fast/text-to-video",
        duration=_as_text,
        resolution=True,
    ),
    m.FAL_LTX_2_3.name: FalEndpoint(
        text="fal-ai/ltx-2.3/text-to-video", duration=_as_int, resolution=True
    ),
}


def submission(request: CreateRequest) -> tuple[str, dict[str, Any]]:
    """The endpoint id and the JSON input for one create; the catalog checked the values."""
    endpoint = ENDPOINTS.get(request.model)
    if endpoint is None:
        raise ProviderRejected(
            f"fal has no model {request.model!r} here", code="invalid_value", param="model"
        )
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "duration": endpoint.duration(request.seconds),
    }
    endpoint_id = endpoint.text
    aspect = True
    if request.input_reference is not None:
        if endpoint.image is None:
            raise ProviderRejected(
                f"{request.model} takes no image", code="invalid_value", param="input_reference"
            )
        endpoint_id = endpoint.image
        body["image_url"] = _image_url(request.input_reference)
        aspect = endpoint.image_aspect_ratio
    if aspect:
        body["aspect_ratio"] = _ASPECT[request.size]
    if endpoint.resolution:
        body["resolution"] = _RESOLUTION[request.size]
    return endpoint_id, body


def app_of(endpoint_id: str) -> str:
    """`owner/alias` of an endpoint id: where its requests' status, result and cancel live."""
    parts = endpoint_id.split("/")
    if len(parts) < 2:
        raise ValueError(f"not a fal endpoint id: {endpoint_id!r}")
    return "/".join(parts[:2])


def _image_url(reference: ImageBytes | ImageUrl) -> str:
    if isinstance(reference, ImageUrl):
        return reference.url
    encoded = base64.b64encode(reference.data).decode("ascii")
    return f"data:{reference.content_type or 'image/png'};base64,{encoded}"
