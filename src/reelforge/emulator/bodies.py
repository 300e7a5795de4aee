"""Request bodies: JSON or multipart into one shape, and typed field readers with API wording."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from reelforge.domain.errors import json_type
from reelforge.emulator.errors import (
    EmulatorError,
    bad_json,
    invalid_type,
    missing,
    unknown_parameter,
)


@dataclass(frozen=True)
class Upload:
    """A file part, read into memory (bodies are capped by `max_upload_bytes`)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Body:
    """The request's fields, nested (`a[b]` and `a[][b]` form keys are unflattened)."""

    fields: dict[str, Any]
    multipart: bool


def too_large(limit: int) -> EmulatorError:
    return EmulatorError(
        413,
        f"Request too large: the body may be at most {limit} bytes.",
        code="request_too_large",
    )


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit)
        except ValueError:
            raise EmulatorError(400, "Invalid Content-Length header.") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody will read the answer; end the request quietly instead of as a server error.
        raise EmulatorError(400, "The client disconnected while sending the body.") from None
    return b"".join(chunks)


async def read_body(request: Request, limit: int) -> Body:
    """Parse a JSON or multipart (or urlencoded) body; anything malformed is a protocol 400."""
    raw = await _read_limited(request, limit)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return Body(await _parse_form(request, raw, limit), multipart=True)
    if content_type not in ("", "application/json") and not content_type.endswith("+json"):
        raise EmulatorError(
            400,
            f"Unsupported content type: '{content_type}'. This endpoint accepts "
            "'application/json' and 'multipart/form-data'.",
            code="unsupported_content_type",
        )
    if not raw.strip():
        return Body({}, multipart=False)
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_json() from None
    if not isinstance(parsed, dict):
        raise EmulatorError(
            400,
            f"Invalid type for request body: expected an object, but got {describe(parsed)} "
            "instead.",
            code="invalid_type",
        )
    return Body(parsed, multipart=False)


async def _parse_form(request: Request, raw: bytes, limit: int) -> dict[str, Any]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    replay = Request(request.scope, receive)
    items: list[tuple[str, Any]] = []
    try:
        form = await replay.form(max_files=100, max_fields=1000, max_part_size=limit)
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    upload = Upload(
                        filename=value.filename or "upload",
                        content_type=(value.content_type or "application/octet-stream"),
                        data=data,
                    )
                    items.append((key, upload))
                else:
                    items.append((key, value))
        finally:
            await form.close()
    except (MultiPartException, HTTPException, ValueError, KeyError) as exc:
        detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
        raise EmulatorError(
            400, f"Could not parse the multipart form data: {detail}", code="invalid_body"
        ) from None
    return unflatten(items)


_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


def unflatten(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """`input_reference[image_url]=x` → `{"input_reference": {"image_url": "x"}}`;
    `characters[][id]=a` twice → `{"characters": [{"id": "a"}, {"id": …}]}`."""
    result: dict[str, Any] = {}
    for key, value in items:
        head = key.split("[", 1)[0]
        rest = key[len(head) :]
        parts = _BRACKETS.findall(rest) if rest else []
        if not head or (rest and "".join(f"[{p}]" for p in parts) != rest):
            result[key] = value  # not bracket notation after all: keep the key verbatim
            continue
        _assign(result, [head, *parts], value)
    return result


def _assign(node: dict[str, Any] | list[Any], path: list[str], value: Any) -> None:
    key, rest = path[0], path[1:]
    if isinstance(node, list):
        # `[]` segment: append a value, or fill the last object unless it already has this key.
        if not rest:
            node.append(value)
            return
        last = node[-1] if node and isinstance(node[-1], dict) else None
        if last is None or (len(rest) == 1 and rest[0] in last):
            last = {}
            node.append(last)
        _assign(last, rest, value)
        return
    if not rest:
        node[key] = value
        return
    child = node.get(key)
    if rest[0] == "":
        if not isinstance(child, list):
            child = node[key] = []
    elif not isinstance(child, dict):
        child = node[key] = {}
    _assign(child, rest, value)


def describe(value: Any) -> str:
    """How the real API names a JSON type in `invalid_type` messages."""
    if isinstance(value, Upload):
        return "a file"
    return json_type(value)


def reject_unknown(body: Body, allowed: frozenset[str]) -> None:
    for name in body.fields:
        if name not in allowed:
            raise unknown_parameter(name)


def optional_string(body: Body, name: str) -> str | None:
    value = body.fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_type(name, "a string", describe(value))
    return value


def required_string(body: Body, name: str, *, max_length: int) -> str:
    value = optional_string(body, name)
    if value is None:
        raise missing(name)
    if value == "":
        raise EmulatorError(
            400,
            f"Invalid '{name}': string too short. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            param=name,
            code="string_below_min_length",
        )
    if len(value) > max_length:
        raise EmulatorError(
            400,
            f"Invalid '{name}': string too long. Expected a string with maximum length "
            f"{max_length}, but got a string with length {len(value)} instead.",
            param=name,
            code="string_above_max_length",
        )
    return value
