"""The emulator's configuration: one EmulatorSettings object read from `REELFORGE_EMULATOR_*`."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "REELFORGE_EMULATOR_"

# The protocol routes by name, as counted in /_emulator/stats and named in `error_routes`.
ROUTE_NAMES = (
    "videos.create",
    "videos.list",
    "videos.retrieve",
    "videos.delete",
    "videos.content",
    "videos.remix",
    "videos.edit",
    "videos.extend",
    "videos.create_character",
    "videos.get_character",
)

# Standard Webhooks' recommended schedule (the first attempt is immediate, these are the waits
# before each retry): about 27 h in all, bounded, as OpenAI's "retries for up to 72 hours" is.
DEFAULT_WEBHOOK_RETRY_DELAYS: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _split_words(value: Any) -> Any:
    """Accept `a,b,c` from the environment as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class EmulatorSettings(BaseSettings):
    """Everything the emulator reads; defaults behave like the real upstream with no faults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- protocol ---------------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        default=None,
        description="The one accepted Bearer key; unset accepts any key (a key is still required).",
    )
    poll_after_ms: int = Field(
        default=1000,
        ge=0,
        description="`openai-poll-after-ms` sent while a video is pending; 0 omits the header.",
    )
    ttl_seconds: int = Field(
        default=3600,
        ge=1,
        description="`expires_at = completed_at + ttl_seconds`; downloads fail afterwards.",
    )
    evict_after_seconds: int = Field(
        default=3600,
        ge=0,
        description="Grace after `expires_at` before a job and its assets are dropped.",
    )
    janitor_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often expired jobs are looked for."
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (reference images, uploaded videos).",
    )
    fetch_image_urls: bool = Field(
        default=False,
        description="Fetch `http(s)` `input_reference.image_url`s; `data:` URLs always work.",
    )
    ledger_limit: int = Field(
        default=100_000, ge=1, description="Ledger rows kept; the oldest are dropped beyond this."
    )

    # --- rendering --------------------------------------------------------------------------
    render_concurrency: int = Field(
        default=1, ge=1, le=64, description="Renders running at once (each is CPU-bound)."
    )
    seed: int = Field(
        default=0, description="Global seed mixed into every render and the failure draw."
    )
    asset_dir: Path | None = Field(
        default=None,
        description="Keep finished assets in this directory instead of in memory.",
    )
    state_dir: Path | None = Field(
        default=None,
        description="Keep jobs, ledger, characters and assets here, across restarts; "
        "unset keeps everything in memory.",
    )

    # --- faults (the runtime copy can be changed with PUT /_emulator/faults) -----------------
    latency_seconds: float = Field(
        default=0.0, ge=0, description="Minimum time a job stays in progress."
    )
    failure_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of jobs that fail (seeded draw)."
    )
    moderation_words: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Prompts containing any of these words fail with `moderation_blocked`.",
    )
    rate_limit_rpm: int | None = Field(
        default=None, ge=1, description="Creates allowed per minute (moving window); 429 beyond."
    )
    retry_after_ms: int = Field(
        default=1000, ge=0, description="`Retry-After`/`retry-after-ms` on injected 429/5xx."
    )
    error_burst: int = Field(
        default=0, ge=0, description="The next N protocol calls answer `error_status`."
    )
    error_status: int = Field(default=500, description="Status of the burst: 429 or 500-599.")
    error_routes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Route names the burst applies to (e.g. `videos.retrieve`); empty: all.",
    )
    late_create_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Every create answers this much later (the job already exists upstream).",
    )
    slow_download_bps: int | None = Field(
        default=None, ge=1, description="Throttle every download to this many bytes per second."
    )
    truncate_downloads: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Send only this fraction of every download, then close the connection.",
    )
    drop_webhooks: bool = Field(default=False, description="Never send webhooks.")

    # --- webhooks ---------------------------------------------------------------------------
    webhook_url: str | None = Field(
        default=None, description="Where `video.completed` / `video.failed` events are POSTed."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="`whsec_<base64>` signing secret (Standard Webhooks)."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Per-attempt timeout; slower receivers count as failed."
    )
    webhook_retry_delays: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_RETRY_DELAYS),
        description="Seconds to wait before each retry of a failed delivery.",
    )

    @field_validator("moderation_words", "error_routes", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_words(value)

    @field_validator("webhook_retry_delays", mode="before")
    @classmethod
    def _delays(cls, value: Any) -> Any:
        return _split_words(value)

    @field_validator("webhook_retry_delays")
    @classmethod
    def _delays_positive(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays must be >= 0")
        return value

    @field_validator("error_status")
    @classmethod
    def _error_status(cls, value: int) -> int:
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

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http(s) URL")
        return value or None

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if not secret.startswith("whsec_"):
            raise ValueError("webhook_secret must look like whsec_<base64>")
        try:
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("webhook_secret must be whsec_ followed by base64") from None
        return value
