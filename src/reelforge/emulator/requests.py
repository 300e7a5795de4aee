"""What a request to the emulator may hold: its fields, their limits and their shapes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reelforge.domain.catalog import (
    EXTENSION_SECONDS,
    MAX_EXTENDED_SECONDS,
    MAX_EXTENSIONS,
    Feature,
    ModelSpec,
)
from reelforge.emulator.bodies import Body, Upload, describe, optional_string, required_string
from reelforge.emulator.errors import choice_error, invalid_type, invalid_value, missing

MAX_PROMPT = 32000
MAX_CHARACTER_NAME = 80
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100

CREATE_FIELDS = frozenset({"prompt", "model", "seconds", "size", "input_reference", "characters"})
REMIX_FIELDS = frozenset({"prompt"})
EDIT_FIELDS = frozenset({"prompt", "video", "model"})
EXTEND_FIELDS = frozenset({"prompt", "video", "seconds", "model"})
CHARACTER_FIELDS = frozenset({"name", "video"})


def derive_seed(global_seed: int, *parts: object) -> int:
    """A 63-bit seed from the request: the same request renders the same bytes."""
    material = json.dumps([global_seed, *parts], separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big") >> 1


def require_feature(model_spec: ModelSpec, feature: Feature, param: str | None) -> None:
    if not model_spec.supports(feature):
        raise invalid_value(
            param or "model",
            f"The model '{model_spec.name}' does not support {feature.value.replace('_', ' ')}.",
        )


def dimensions(size: str) -> tuple[int, int]:
    width, height = size.split("x")
    return int(width), int(height)


def character_ids(value: Any) -> list[tuple[str, str]]:
    """The `characters` field's ids, each with the parameter that named it."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_type("characters", "an array", describe(value))
    ids: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        param = f"characters[{index}]"
        if not isinstance(item, dict) or set(item) != {"id"}:
            raise invalid_type(param, "an object with an 'id'", describe(item))
        if not isinstance(item["id"], str):
            raise invalid_type(f"{param}.id", "a string", describe(item["id"]))
        ids.append((param, item["id"]))
    return ids


def source_video(body: Body) -> Upload | str:
    """The `video` field of an edit or extension: an uploaded file, or the id of a video."""
    value = body.fields.get("video")
    if value is None:
        raise missing("video")
    if isinstance(value, Upload):
        return value
    if not isinstance(value, dict):
        expected = "a file" if body.multipart else "an object"
        raise invalid_type("video", expected, describe(value))
    if set(value) != {"id"}:
        raise invalid_value("video", "Invalid 'video': expected an object with an 'id'.")
    if not isinstance(value["id"], str):
        raise invalid_type("video.id", "a string", describe(value["id"]))
    return value["id"]


def extension_seconds(body: Body, source_id: str, source_seconds: int, extensions: int) -> str:
    """The `seconds` an extension adds, checked against the source it extends."""
    seconds = optional_string(body, "seconds")
    if seconds is None:
        raise missing("seconds")
    if seconds not in EXTENSION_SECONDS:
        raise choice_error("seconds", seconds, EXTENSION_SECONDS)
    if extensions >= MAX_EXTENSIONS:
        raise invalid_value(
            "video",
            f"Video '{source_id}' has already been extended {extensions} times; "
            f"at most {MAX_EXTENSIONS} extensions are allowed.",
        )
    if source_seconds + int(seconds) > MAX_EXTENDED_SECONDS:
        raise invalid_value(
            "seconds",
            f"Invalid value: '{seconds}'. Extending video '{source_id}' "
            f"({source_seconds} s) by {seconds} s would exceed the maximum total "
            f"duration of {MAX_EXTENDED_SECONDS} seconds.",
        )
    return seconds


def character_name(body: Body) -> str:
    """A new character's name, once its `video` is checked to be an uploaded MP4."""
    name = required_string(body, "name", max_length=MAX_CHARACTER_NAME)
    video = body.fields.get("video")
    if video is None:
        raise missing("video")
    if not isinstance(video, Upload):
        raise invalid_type("video", "a file", describe(video))
    if video.data[4:8] != b"ftyp":
        raise invalid_value(
            "video", "Invalid file format for 'video'. Supported formats are: 'video/mp4'."
        )
    return name
