"""Fault injection: `[[tags]]` in prompts, the runtime fault settings, and their counters."""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelforge.emulator.errors import EmulatorError, invalid_value, rate_limited, server_error
from reelforge.emulator.settings import ROUTE_NAMES, EmulatorSettings

# `[[name]]` or `[[name=value]]`; names are lowercase words, digits and dashes.
TAG_PATTERN = re.compile(r"\[\[\s*([a-z0-9][a-z0-9-]*)\s*(?:=\s*([^\]\s]*)\s*)?\]\]")

DEFAULT_SLOW_DOWNLOAD_BPS = 64 * 1024
DEFAULT_TRUNCATE_FRACTION = 0.5
DEFAULT_FAIL_CODE = "video_generation_failed"
FAIL_MESSAGES = {
    "moderation_blocked": "Your request was blocked by our moderation system.",
    "video_generation_failed": "Video generation failed. Please try again.",
    "internal_error": "The server had an error while generating your video.",
}
MODERATION = "moderation_blocked"
_MAX_DELAY_SECONDS = 3600.0
_MAX_COUNT = 1000


class Faults(BaseModel):
    """The fault settings in force; `PUT /_emulator/faults` replaces the fields it names."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_seconds: float = Field(default=0.0, ge=0, le=_MAX_DELAY_SECONDS)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    moderation_words: list[str] = Field(default_factory=list)
    rate_limit_rpm: int | None = Field(default=None, ge=1)
    retry_after_ms: int = Field(default=1000, ge=0, le=3_600_000)
    error_burst: int = Field(default=0, ge=0)
    error_status: int = 500
    error_routes: list[str] = Field(default_factory=list)
    late_create_seconds: float = Field(default=0.0, ge=0, le=_MAX_DELAY_SECONDS)
    slow_download_bps: int | None = Field(default=None, ge=1)
    truncate_downloads: float | None = Field(default=None, ge=0, lt=1)
    drop_webhooks: bool = False

    @field_validator("error_status")
    @classmethod
    def _status(cls, value: int) -> int:
        if value != 429 and not 500 <= value <= 599:
            raise ValueError("error_status must be 429 or 500-599")
        return value

    @field_validator("error_routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ROUTE_NAMES))
        if unknown:
            raise ValueError(f"unknown routes {unknown}; known: {', '.join(ROUTE_NAMES)}")
        return value

    @classmethod
    def from_settings(cls, settings: EmulatorSettings) -> Faults:
        return cls.model_validate(
            {name: getattr(settings, name) for name in cls.model_fields}, strict=False
        )


@dataclass(frozen=True)
class PromptTags:
    """What the `[[tags]]` of one prompt ask for, and the prompt without them."""

    text: str
    fail_code: str | None = None
    moderation_at_create: bool = False
    latency_seconds: float | None = None
    ttl_seconds: int | None = None
    error_status: int | None = None
    error_count: int = 0
    late_create_seconds: float | None = None
    slow_download_bps: int | None = None
    truncate_fraction: float | None = None
    no_webhook: bool = False
    names: tuple[str, ...] = ()


def _number(name: str, value: str | None, *, integer: bool, low: float, high: float) -> float:
    if value is None or value == "":
        raise invalid_value("prompt", f"Invalid fault tag '[[{name}]]': it needs a value.")
    try:
        number = float(int(value)) if integer else float(value)
    except ValueError:
        raise invalid_value(
            "prompt", f"Invalid fault tag '[[{name}={value}]]': not a number."
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise invalid_value(
            "prompt", f"Invalid fault tag '[[{name}={value}]]': must be between {low} and {high}."
        )
    return number


def parse_tags(prompt: str) -> PromptTags:
    """Read the fault tags out of `prompt`; unknown `[[…]]` text is left in the prompt as is."""
    found: dict[str, Any] = {}
    names: list[str] = []

    def take(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if name == "fail":
            found["fail_code"] = value or DEFAULT_FAIL_CODE
        elif name == "moderation":
            if value == "create":
                found["moderation_at_create"] = True
            else:
                found["fail_code"] = MODERATION
        elif name == "latency":
            found["latency_seconds"] = _number(
                name, value, integer=False, low=0, high=_MAX_DELAY_SECONDS
            )
        elif name == "ttl":
            found["ttl_seconds"] = int(_number(name, value, integer=True, low=1, high=86400 * 7))
        elif name == "late-create":
            found["late_create_seconds"] = _number(
                name, value, integer=False, low=0, high=_MAX_DELAY_SECONDS
            )
        elif name == "slow-download":
            found["slow_download_bps"] = (
                int(_number(name, value, integer=True, low=1, high=1 << 40))
                if value
                else DEFAULT_SLOW_DOWNLOAD_BPS
            )
        elif name == "truncate":
            found["truncate_fraction"] = (
                _number(name, value, integer=False, low=0, high=0.999)
                if value
                else DEFAULT_TRUNCATE_FRACTION
            )
        elif name == "no-webhook":
            found["no_webhook"] = True
        elif name == "429" or name == "5xx" or (len(name) == 3 and name.startswith("5")):
            status = 500 if name == "5xx" else int(name) if name.isdigit() else 0
            if not (status == 429 or 500 <= status <= 599):
                return match.group(0)
            found["error_status"] = status
            found["error_count"] = (
                int(_number(name, value, integer=True, low=1, high=_MAX_COUNT)) if value else 1
            )
        else:
            return match.group(0)
        names.append(name)
        return ""

    text = TAG_PATTERN.sub(take, prompt)
    if names:
        # Collapse the gaps the tags leave so the rendered prompt reads naturally.
        text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return PromptTags(text=text, names=tuple(names), **found)


def fail_message(code: str) -> str:
    return FAIL_MESSAGES.get(code, "Video generation failed.")


def retry_headers(retry_after_ms: int) -> dict[str, str]:
    """Both spellings, so old and new SDKs wait exactly as long as asked."""
    return {
        "retry-after": str(max(1, math.ceil(retry_after_ms / 1000))) if retry_after_ms else "0",
        "retry-after-ms": str(retry_after_ms),
    }


def injected_error(status: int, retry_after_ms: int) -> EmulatorError:
    headers = retry_headers(retry_after_ms)
    if status == 429:
        return rate_limited(
            "Rate limit reached for requests. Please try again later (injected by the emulator).",
            headers,
        )
    return server_error(status, headers)


@dataclass
class FaultState:
    """The live fault settings plus the counters they need; thread-safe."""

    settings: EmulatorSettings
    faults: Faults = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _burst_left: int = field(default=0, init=False)
    _tagged_left: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict, init=False)
    _rng: random.Random = field(init=False)
    _limiter: MovingWindowRateLimiter = field(init=False)
    _limit: RateLimitItemPerMinute | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults.from_settings(self.settings)
            self._rng = random.Random(f"failure:{self.settings.seed}")
            self._tagged_left.clear()
            self._apply()

    def update(self, changes: dict[str, Any]) -> Faults:
        """Apply a partial update (validated as a whole) and restart the counters it touches."""
        with self._lock:
            merged = self.faults.model_dump() | changes
            self.faults = Faults.model_validate(merged)
            self._apply()
            return self.faults.model_copy()

    def _apply(self) -> None:
        self._burst_left = self.faults.error_burst
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        rpm = self.faults.rate_limit_rpm
        self._limit = RateLimitItemPerMinute(rpm) if rpm else None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data = self.faults.model_dump()
            data["error_burst_remaining"] = self._burst_left
            return data

    def current(self) -> Faults:
        with self._lock:
            return self.faults.model_copy()

    def check_burst(self, route: str) -> None:
        """Answer the configured error if a burst is running and covers `route`."""
        with self._lock:
            routes = self.faults.error_routes
            if self._burst_left <= 0 or (routes and route not in routes):
                return
            self._burst_left -= 1
            self.faults.error_burst = self._burst_left
            error = injected_error(self.faults.error_status, self.faults.retry_after_ms)
        raise error

    def check_rate_limit(self) -> None:
        with self._lock:
            limit = self._limit
            limiter = self._limiter
        if limit is None:
            return
        if limiter.hit(limit, "create"):
            return
        stats = limiter.get_window_stats(limit, "create")
        wait_ms = max(1, math.ceil((stats.reset_time - time.time()) * 1000))
        headers = retry_headers(wait_ms) | {
            "x-ratelimit-limit-requests": str(limit.amount),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{wait_ms}ms",
        }
        raise rate_limited(
            f"Rate limit reached for videos on requests per min (RPM): Limit {limit.amount}, "
            f"Used {limit.amount}, Requested 1. Please try again in {wait_ms}ms.",
            headers,
        )

    def check_tagged(self, route: str, prompt: str, tags: PromptTags) -> None:
        """`[[503=2]]`: the first 2 attempts of this very request fail, later ones pass."""
        if not tags.error_status or tags.error_count <= 0:
            return
        key = (route, prompt)
        with self._lock:
            left = self._tagged_left.get(key, tags.error_count)
            if left <= 0:
                return
            self._tagged_left[key] = left - 1
            self._tagged_left.move_to_end(key)
            while len(self._tagged_left) > 10_000:  # bounded memory for long-running emulators
                self._tagged_left.popitem(last=False)
            retry_after_ms = self.faults.retry_after_ms
        raise injected_error(tags.error_status, retry_after_ms)

    def draw_failure(self) -> bool:
        """A seeded draw: the same sequence of creates fails the same way on every run."""
        with self._lock:
            rate = self.faults.failure_rate
            draw = self._rng.random()
        return draw < rate

    def moderated(self, text: str) -> bool:
        with self._lock:
            words = [word.lower() for word in self.faults.moderation_words if word]
        lowered = text.lower()
        return any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in words)
