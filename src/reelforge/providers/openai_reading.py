"""How the OpenAI SDK's answers become domain types; the SDK builds models without
validation, so a compatible endpoint may hand us anything: every field we rely on is checked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

from openai.types import Video

from reelforge.domain.upstream import (
    POLL_AFTER_HEADER,
    ProviderProtocolError,
    UpstreamStatus,
    UpstreamVideo,
)


def upstream_video(obj: object, headers: Mapping[str, str] | None = None) -> UpstreamVideo:
    if not isinstance(obj, Video):
        raise ProviderProtocolError(f"expected a video object, got {preview(obj)}")
    status = _required_str(obj, "status")
    try:
        upstream_status = UpstreamStatus(status)
    except ValueError:
        allowed = ", ".join(UpstreamStatus)
        raise ProviderProtocolError(
            f"unknown video status {status!r} (expected {allowed})"
        ) from None
    error = getattr(obj, "error", None)
    return UpstreamVideo(
        id=_required_str(obj, "id"),
        status=upstream_status,
        model=_required_str(obj, "model"),
        size=_required_str(obj, "size"),
        seconds=_seconds(obj),
        progress=_progress(obj, upstream_status),
        prompt=optional_str(obj, "prompt"),
        created_at=_timestamp(obj, "created_at"),
        completed_at=_timestamp(obj, "completed_at"),
        expires_at=_timestamp(obj, "expires_at"),
        error_code=optional_str(error, "code"),
        error_message=optional_str(error, "message"),
        remixed_from_video_id=optional_str(obj, "remixed_from_video_id"),
        poll_after_ms=_poll_after_ms(headers),
    )


def page_items(page: object) -> list[object]:
    data = getattr(page, "data", None)
    if not isinstance(data, list):
        raise ProviderProtocolError(f"expected a list envelope, got {preview(page)}")
    return cast(list[object], data)


def _required_str(obj: object, name: str) -> str:
    value = getattr(obj, name, None)
    if not isinstance(value, str) or not value:
        raise ProviderProtocolError(
            f"video field {name!r} must be a non-empty string, got {value!r}"
        )
    return value


def optional_str(obj: object, name: str) -> str | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, str) and value else None


def _seconds(obj: object) -> str:
    value = getattr(obj, "seconds", None)
    # The protocol sends a string; tolerate gateways that send a number.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _required_str(obj, "seconds")


def _progress(obj: object, status: UpstreamStatus) -> int:
    value = getattr(obj, "progress", None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0, min(100, int(value)))
    if value is None:
        return 100 if status is UpstreamStatus.COMPLETED else 0
    raise ProviderProtocolError(f"video field 'progress' must be a number, got {value!r}")


def _timestamp(obj: object, name: str) -> datetime | None:
    value = getattr(obj, name, None)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise ProviderProtocolError(f"video field {name!r} must be a unix timestamp, got {value!r}")


def _poll_after_ms(headers: Mapping[str, str] | None) -> int | None:
    value = (headers or {}).get(POLL_AFTER_HEADER)
    if value is None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        return None  # a bad hint is no hint


def preview(obj: object) -> str:
    text = repr(obj)
    return f"{type(obj).__name__} {text[:200]}{'…' if len(text) > 200 else ''}"
