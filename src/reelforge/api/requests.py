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

The /v1 gateway reads strictly, as the protocol (and the emulator) does: a parameter the
protocol doesn't define is `unknown_parameter`, a value of the wrong JSON type (`seconds` as a
number, a reference as a bare string) is `invalid_type`, and a missing prompt is
`missing_required_parameter`, each naming the parameter. The guide's /api keeps its looser
reading, because the guide's own client sends numbers and bare `data:` URLs.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable
from typing import Annotated, TypeVar

from fastapi import Header, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData, UploadFile

from reelforge.api.edge import DEFAULT_MAX_BODY_BYTES, max_body, refuse_nul
from reelforge.api.errors import ApiError
from reelforge.domain.errors import InputError, json_type
from reelforge.services.references import MAX_REFERENCE_BYTES
from reelforge.services.videos import NewVideo

REFERENCE = "input_reference"
QUALITY = "quality"
_MULTIPART = "multipart/form-data"
_TEXT_PARAMETERS = ("prompt", "model", "size", "seconds")
_REFERENCE_URL = f"{REFERENCE}[image_url]"
# What the protocol defines for a create (`characters` too, which is refused by name).
_CREATE_PARAMETERS = frozenset({*_TEXT_PARAMETERS, REFERENCE, "characters"})
_CREATE_FORM_FIELDS = frozenset(
    {*_TEXT_PARAMETERS, REFERENCE, _REFERENCE_URL, f"{REFERENCE}[file_id]"}
)
_REMIX_PARAMETERS = frozenset({"prompt"})
INVALID_TYPE = "invalid_type"

PROTOCOL_FIELDS = frozenset({*_TEXT_PARAMETERS, REFERENCE})
GUIDE_FIELDS = PROTOCOL_FIELDS | {QUALITY}

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
    request: Request,
    idempotency_key: str | None,
    *,
    strict: bool = False,
    accepted: frozenset[str] | None = None,
) -> NewVideo:
    """A create request from a JSON or a multipart body: `strict` as the protocol reads it
    (/v1), or `accepted` naming the fields the route takes, each other one refused (/api)."""
    if _is_multipart(request):
        async with request.form(max_files=1, max_fields=20) as form:
            fields = _text_fields(form)
            if strict:
                _check_form(form, _CREATE_FORM_FIELDS)
            reference = await _form_reference(form, fields)
            if accepted is not None:
                named = {REFERENCE if key == _REFERENCE_URL else key for key in form}
                _refuse_unknown(named, accepted, listing=True)
        return NewVideo(
            prompt=fields.get("prompt"),
            model=fields.get("model"),
            size=fields.get("size"),
            seconds=fields.get("seconds"),
            input_reference=reference,
            idempotency_key=idempotency_key,
            quality=fields.get(QUALITY) if accepted and QUALITY in accepted else None,
        )
    data = _load_json(await request.body())
    if strict:
        _check_json(data, _CREATE_PARAMETERS, references=True)
    body = _parse_json(_CreateBody, data)
    if body.characters is not None:
        raise _no_characters()
    extra = body.model_extra or {}
    quality = None
    if accepted is not None:
        _refuse_unknown(body.model_fields_set | set(extra), accepted, listing=True)
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


async def read_remix_prompt(request: Request) -> str:
    """The prompt of a remix, from `{"prompt": …}` or a multipart `prompt` field, read as
    strictly as the protocol reads it (the gateway's; /api's remix takes a typed body)."""
    if _is_multipart(request):
        # One file at most, so that a prompt sent as a file is refused by name.
        async with request.form(max_files=1, max_fields=5) as form:
            _check_form(form, _REMIX_PARAMETERS)
            return _text_fields(form)["prompt"]
    data = _load_json(await request.body())
    _check_json(data, _REMIX_PARAMETERS, references=False)
    return _parse_json(_RemixBody, data).prompt


def _optional_text(field: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(field, "must be a string")


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(_MULTIPART)


def _text_fields(form: FormData) -> dict[str, str]:
    texts = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    refuse_nul("", dict(texts))
    fields = {key: value for key, value in texts}
    if any(_is_characters(key) for key in form):
        raise _no_characters()
    return fields


async def _form_reference(form: FormData, fields: dict[str, str]) -> bytes | None:
    upload = form.get(REFERENCE)
    if isinstance(upload, UploadFile):
        return await upload.read()
    if upload is not None:
        raise ApiError(
            400,
            INVALID_TYPE,
            f"Invalid type for '{REFERENCE}': expected a file, but got a string instead (send "
            f"the image as a file part, or a data: URL as {REFERENCE}[image_url]).",
            field=REFERENCE,
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


def _load_json(raw: bytes) -> object:
    if not raw.strip():
        return {}  # no body: say what's missing from it, not that it's malformed
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InputError("body", f"Invalid JSON: {exc}") from None


def _parse_json(model: type[_Body], data: object) -> _Body:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = first["loc"]
        field = str(location[0]) if location else "body"
        raise InputError(field, str(first["msg"])) from None


def _check_form(form: FormData, allowed: frozenset[str]) -> None:
    """The protocol's checks of a multipart body: known fields, text where text belongs, and
    a prompt (files are read by name, so a text field sent as a file would vanish)."""
    _refuse_unknown(form.keys(), allowed)
    for name in _TEXT_PARAMETERS:
        if isinstance(form.get(name), UploadFile):
            raise _invalid_type(name, "a string", "a file")
    if form.get("prompt") is None:
        raise _missing("prompt")


def _check_json(body: object, allowed: frozenset[str], *, references: bool) -> None:
    """The protocol's checks of a JSON body: an object of known parameters, each of its JSON
    type, with a prompt."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            INVALID_TYPE,
            f"Invalid type for request body: expected an object, but got {json_type(body)} "
            "instead.",
            field="body",
        )
    _refuse_unknown(body, allowed)
    for name in _TEXT_PARAMETERS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise _invalid_type(name, "a string", json_type(value))
    if body.get("prompt") is None:
        raise _missing("prompt")
    reference = body.get(REFERENCE)
    if references and reference is not None and not isinstance(reference, dict):
        raise _invalid_type(REFERENCE, "an object", json_type(reference))


def _refuse_unknown(
    names: Iterable[str], allowed: frozenset[str], *, listing: bool = False
) -> None:
    """A 400 naming the first parameter not in `allowed`: in the protocol's words, or
    (`listing`, for /api) with the list of what the endpoint takes."""
    for name in sorted(names) if listing else names:
        if name in allowed or _is_characters(name):
            continue
        message = f"Unknown parameter: '{name}'."
        if listing:
            message = f"{name}: unknown field; this endpoint takes {', '.join(sorted(allowed))}"
        raise ApiError(400, "unknown_parameter", message, field=name)


def _missing(name: str) -> ApiError:
    return ApiError(
        400, "missing_required_parameter", f"Missing required parameter: '{name}'.", field=name
    )


def _invalid_type(name: str, expected: str, got: str) -> ApiError:
    return ApiError(
        400,
        INVALID_TYPE,
        f"Invalid type for '{name}': expected {expected}, but got {got} instead.",
        field=name,
    )


def _is_characters(name: str) -> bool:
    return name == "characters" or name.startswith("characters[")


def _no_file_ids() -> InputError:
    return InputError(
        REFERENCE,
        "file ids are not supported by this server; upload the image as a file, or send "
        '{"image_url": "data:…"}',
    )


def _no_characters() -> InputError:
    return InputError("characters", "characters are not offered by this server yet")
