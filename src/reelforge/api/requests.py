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
from collections.abc import Iterable
from typing import Annotated, TypeVar

from fastapi import Header, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData, UploadFile

from reelforge.api.errors import ApiError
from reelforge.domain.errors import InputError, json_type
from reelforge.services.videos import NewVideo

REFERENCE = "input_reference"
_MULTIPART = "multipart/form-data"
_TEXT_PARAMETERS = ("prompt", "model", "size", "seconds")
# What the protocol defines for a create (`characters` too, which is refused by name).
_CREATE_PARAMETERS = frozenset({*_TEXT_PARAMETERS, REFERENCE, "characters"})
_CREATE_FORM_FIELDS = frozenset(
    {*_TEXT_PARAMETERS, REFERENCE, f"{REFERENCE}[image_url]", f"{REFERENCE}[file_id]"}
)
_REMIX_PARAMETERS = frozenset({"prompt"})
INVALID_TYPE = "invalid_type"

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


async def read_new_video(
    request: Request, idempotency_key: str | None, *, strict: bool = False
) -> NewVideo:
    """A create request from a JSON or a multipart body; `strict` as the protocol reads it."""
    if _is_multipart(request):
        async with request.form(max_files=1, max_fields=20) as form:
            fields = _text_fields(form)
            if strict:
                _check_form(form, _CREATE_FORM_FIELDS)
            reference = await _form_reference(form, fields)
        return NewVideo(
            prompt=fields.get("prompt"),
            model=fields.get("model"),
            size=fields.get("size"),
            seconds=fields.get("seconds"),
            input_reference=reference,
            idempotency_key=idempotency_key,
        )
    data = _load_json(await request.body())
    if strict:
        _check_json(data, _CREATE_PARAMETERS, references=True)
    body = _parse_json(_CreateBody, data)
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


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(_MULTIPART)


def _text_fields(form: FormData) -> dict[str, str]:
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
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


def _refuse_unknown(names: Iterable[str], allowed: frozenset[str]) -> None:
    for name in names:
        if name not in allowed and not _is_characters(name):
            raise ApiError(400, "unknown_parameter", f"Unknown parameter: '{name}'.", field=name)


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
