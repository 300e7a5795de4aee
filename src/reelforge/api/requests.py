"""Reading create and remix requests from JSON or multipart bodies, for /api and /v1 alike.

One parser serves both interfaces, so a body means the same thing wherever it is sent:

- JSON: `prompt`, `model`, `size`, `seconds` (a string, or an integer we coerce), and
  `input_reference` as the protocol's `{"image_url": "data:…"}` or, as the guide's /api
  sends it, the bare `data:` URL string.
- Multipart (what the official SDK always sends): the same names as text fields, with
  `input_reference` as a file part, or `input_reference[image_url]` as a text field.

Nothing is checked against the catalog here: `Videos.check` does that and names the field.
What this module rejects is what the service can't be handed: malformed JSON, a reference
given as a `file_id` or an https URL (we would have to fetch it), and `characters`, which
no provider behind Reelforge offers yet.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated, TypeVar

from fastapi import Header, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData, UploadFile

from reelforge.api.edge import DEFAULT_MAX_BODY_BYTES, max_body, refuse_nul
from reelforge.domain.errors import InputError
from reelforge.services.references import MAX_REFERENCE_BYTES
from reelforge.services.videos import NewVideo

REFERENCE = "input_reference"
_MULTIPART = "multipart/form-data"

# The largest reference image as base64 (JSON's data: URL), with room for the other fields: a
# larger body is refused before it is read (`api/edge.py`).
CREATE_BODY_LIMIT = max_body(4 * math.ceil(MAX_REFERENCE_BYTES / 3) + DEFAULT_MAX_BODY_BYTES)

_Body = TypeVar("_Body", bound=BaseModel)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Repeat a create safely: the same key and body return the same video.",
    ),
]


class _CreateBody(BaseModel):
    """The JSON create body, loosely typed where this module gives a better message itself."""

    model_config = ConfigDict(extra="ignore")

    prompt: str
    model: str | None = None
    size: str | None = None
    seconds: str | int | None = None
    input_reference: object = None
    characters: object = None


class _RemixBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str


async def read_new_video(request: Request, idempotency_key: str | None) -> NewVideo:
    """A create request from a JSON or a multipart body."""
    if _is_multipart(request):
        async with request.form(max_files=1, max_fields=20) as form:
            fields = _text_fields(form)
            reference = await _form_reference(form, fields)
        return NewVideo(
            prompt=fields.get("prompt"),
            model=fields.get("model"),
            size=fields.get("size"),
            seconds=fields.get("seconds"),
            input_reference=reference,
            idempotency_key=idempotency_key,
        )
    body = _parse_json(_CreateBody, await request.body())
    if body.characters is not None:
        raise _no_characters()
    return NewVideo(
        prompt=body.prompt,
        model=body.model,
        size=body.size,
        seconds=body.seconds,
        input_reference=_json_reference(body.input_reference),
        idempotency_key=idempotency_key,
    )


async def read_remix_prompt(request: Request) -> str | None:
    """The prompt of a remix, from `{"prompt": …}` or a multipart `prompt` field.

    A missing multipart field is None: the service says the prompt is required.
    """
    if _is_multipart(request):
        async with request.form(max_files=0, max_fields=5) as form:
            return _text_fields(form).get("prompt")
    return _parse_json(_RemixBody, await request.body()).prompt


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(_MULTIPART)


def _text_fields(form: FormData) -> dict[str, str]:
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    refuse_nul("", fields)
    if any(key == "characters" or key.startswith("characters[") for key in form):
        raise _no_characters()
    return fields


async def _form_reference(form: FormData, fields: dict[str, str]) -> bytes | None:
    upload = form.get(REFERENCE)
    if isinstance(upload, UploadFile):
        return await upload.read()
    if upload is not None:
        raise InputError(
            REFERENCE,
            "expected a file, but got a string instead (send the image as a file part, "
            f"or a data: URL as {REFERENCE}[image_url])",
        )
    if f"{REFERENCE}[file_id]" in fields:
        raise _no_file_ids()
    url = fields.get(f"{REFERENCE}[image_url]")
    return None if url is None else _data_url(url)


def _json_reference(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _data_url(value)
    if isinstance(value, dict):
        if "file_id" in value:
            raise _no_file_ids()
        url = value.get("image_url")
        if isinstance(url, str):
            return _data_url(url)
    raise InputError(REFERENCE, 'must be an object {"image_url": "data:image/png;base64,…"}')


def _data_url(value: str) -> bytes:
    header, _, payload = value.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise InputError(REFERENCE, "must be a base64 data: URL (data:image/png;base64,…)")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(REFERENCE, "is not valid base64") from None


def _parse_json(model: type[_Body], raw: bytes) -> _Body:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = first["loc"]
        field = str(location[0]) if location else "body"
        raise InputError(field, str(first["msg"])) from None


def _no_file_ids() -> InputError:
    return InputError(
        REFERENCE,
        "file ids are not supported by this server; upload the image as a file, or send "
        '{"image_url": "data:…"}',
    )


def _no_characters() -> InputError:
    return InputError("characters", "characters are not offered by this server yet")
