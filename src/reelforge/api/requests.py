"""Reading create and remix requests from JSON or multipart bodies, for /api and /v1 alike.

One parser serves both interfaces, so a body means the same thing wherever it is sent:

- JSON: `prompt`, `model`, `size`, `seconds` (a string, or an integer we coerce), and
  `input_reference` as the protocol's `{"image_url": "data:…"}` or, as the guide's /api
  sends it, the bare `data:` URL string.
- Multipart (what the official SDK always sends): the same names as text fields, with
  `input_reference` as a file part, or `input_reference[image_url]` as a text field.

The guide's /api also takes `quality` (its model tier) and refuses any field it does not
know, naming it (400 `unknown_parameter`), rather than dropping it unseen; a caller says so
with `accepted=GUIDE_FIELDS`.

Nothing is checked against the catalog here: `Videos.check` does that and names the field.
What this module rejects is what the service can't be handed: malformed JSON, a reference
given as a `file_id` or an https URL (we would have to fetch it), and `characters`, which
no provider behind Reelforge offers yet.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, TypeVar

from fastapi import Header, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData, UploadFile

from reelforge.api.errors import ApiError
from reelforge.domain.errors import InputError
from reelforge.services.videos import NewVideo

REFERENCE = "input_reference"
QUALITY = "quality"
_MULTIPART = "multipart/form-data"
_REFERENCE_URL = f"{REFERENCE}[image_url]"

PROTOCOL_FIELDS = frozenset({"prompt", "model", "size", "seconds", REFERENCE})
GUIDE_FIELDS = PROTOCOL_FIELDS | {QUALITY}

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

    model_config = ConfigDict(extra="allow")

    prompt: str
    model: str | None = None
    size: str | None = None
    seconds: str | int | None = None
    input_reference: object = None
    characters: object = None


class _RemixBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str


async def read_new_video(
    request: Request, idempotency_key: str | None, *, accepted: frozenset[str] | None = None
) -> NewVideo:
    """A create request from a JSON or a multipart body.

    `accepted` names the fields the route takes, each other one refused; None reads the
    protocol's and ignores the rest.
    """
    if _is_multipart(request):
        async with request.form(max_files=1, max_fields=20) as form:
            fields = _text_fields(form)
            reference = await _form_reference(form, fields)
            if accepted is not None:
                named = {REFERENCE if key == _REFERENCE_URL else key for key in form}
                _refuse_unknown(named, accepted)
        return NewVideo(
            prompt=fields.get("prompt"),
            model=fields.get("model"),
            size=fields.get("size"),
            seconds=fields.get("seconds"),
            input_reference=reference,
            idempotency_key=idempotency_key,
            quality=fields.get(QUALITY) if accepted and QUALITY in accepted else None,
        )
    body = _parse_json(_CreateBody, await request.body())
    if body.characters is not None:
        raise _no_characters()
    extra = body.model_extra or {}
    quality = None
    if accepted is not None:
        _refuse_unknown(body.model_fields_set | set(extra), accepted)
        quality = _optional_text(QUALITY, extra.get(QUALITY))
    return NewVideo(
        prompt=body.prompt,
        model=body.model,
        size=body.size,
        seconds=body.seconds,
        input_reference=_json_reference(body.input_reference),
        idempotency_key=idempotency_key,
        quality=quality,
    )


async def read_remix_prompt(request: Request) -> str | None:
    """The prompt of a remix, from `{"prompt": …}` or a multipart `prompt` field.

    A missing multipart field is None: the service says the prompt is required.
    """
    if _is_multipart(request):
        async with request.form(max_files=0, max_fields=5) as form:
            return _text_fields(form).get("prompt")
    return _parse_json(_RemixBody, await request.body()).prompt


def _refuse_unknown(names: set[str], accepted: frozenset[str]) -> None:
    unknown = sorted(names - accepted)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"{unknown[0]}: unknown field; this endpoint takes {', '.join(sorted(accepted))}",
            field=unknown[0],
        )


def _optional_text(field: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(field, "must be a string")


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(_MULTIPART)


def _text_fields(form: FormData) -> dict[str, str]:
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
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
    url = fields.get(_REFERENCE_URL)
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
