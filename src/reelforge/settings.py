"""Reelforge's configuration: one Settings object read from the environment and `.env`."""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import limits
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ProviderName(StrEnum):
    EMULATOR = "emulator"
    OPENAI = "openai"
    FAL = "fal"
    VEO = "veo"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _env(name: str, *plain: str) -> AliasChoices:
    """Accept REELFORGE_<NAME> and, for well-known variables, the plain name too."""
    return AliasChoices(f"REELFORGE_{name}", *plain)


Port = Annotated[int, Field(ge=1, le=65535)]
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


class Settings(BaseSettings):
    """Every setting Reelforge reads; the defaults are the embedded mode."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    data_dir: Path = Field(
        default=Path(".reelforge"),
        validation_alias=_env("DATA_DIR"),
        description="Directory for the SQLite database, local objects and generated secrets.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=_env("DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy async URL; default is a SQLite file in the data directory.",
    )
    database_pool_size: Annotated[int, Field(ge=1, le=500)] = Field(
        default=10,
        validation_alias=_env("DATABASE_POOL_SIZE"),
        description=(
            "Database connections each process keeps open (up to 10 more are opened for "
            "bursts and closed after); at least the worker concurrency plus a few, since "
            "opening a connection costs far more than a query."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=_env("REDIS_URL", "REDIS_URL"),
        description="Redis for pub/sub and shared rate limits; in-process when unset.",
    )
    redis_key_prefix: str = Field(
        default="reelforge",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        validation_alias=_env("REDIS_KEY_PREFIX"),
        description="Prefix of every Redis key and channel, so installations can share a Redis.",
    )
    storage_url: str | None = Field(
        default=None,
        validation_alias=_env("STORAGE_URL"),
        description="`file:///path` or `s3://bucket/prefix`; default is `<data dir>/objects`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=_env("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        description="Endpoint of an S3-compatible server (MinIO, Ceph, R2 …).",
    )
    s3_region: str = Field(
        default="us-east-1",
        validation_alias=_env("S3_REGION", "AWS_REGION"),
        description="S3 region.",
    )
    s3_access_key_id: str | None = Field(
        default=None,
        validation_alias=_env("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        description="S3 access key id.",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        description="S3 secret access key.",
    )
    provider: ProviderName = Field(
        default=ProviderName.EMULATOR,
        validation_alias=_env("PROVIDER"),
        description=(
            "Default video provider (for requests that name no model): the built-in `emulator`, "
            "an `openai`-compatible endpoint, `fal` or `veo`."
        ),
    )
    providers: str = Field(
        default="",
        validation_alias=_env("PROVIDERS"),
        description=(
            "More providers configured beside the default, comma-separated (`fal,veo`); a "
            "request goes to whichever offers its model."
        ),
    )
    fal_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("FAL_KEY", "FAL_KEY"),
        description="Key for the `fal` provider.",
    )
    fal_base_url: str | None = Field(
        default=None,
        validation_alias=_env("FAL_BASE_URL"),
        description="Base URL of fal's queue (default `https://queue.fal.run`).",
    )
    fal_webhook_url: str | None = Field(
        default=None,
        validation_alias=_env("FAL_WEBHOOK_URL"),
        description=(
            "This server's public `…/webhooks/fal` URL, sent with every fal submit so fal "
            "calls back when a request finishes; polling only when unset."
        ),
    )
    fal_jwks_url: str = Field(
        default="https://rest.fal.ai/.well-known/jwks.json",
        validation_alias=_env("FAL_JWKS_URL"),
        description="Where fal publishes the ED25519 keys its webhooks are signed with.",
    )
    fal_rate_limit: str | None = Field(
        default=None,
        validation_alias=_env("FAL_RATE_LIMIT"),
        description="Steps all workers may make against fal, `limits` notation; default "
        "`REELFORGE_PROVIDER_RATE_LIMIT`.",
    )
    veo_rate_limit: str | None = Field(
        default=None,
        validation_alias=_env("VEO_RATE_LIMIT"),
        description="The same for Veo (the Gemini API).",
    )
    openai_rate_limit: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_RATE_LIMIT"),
        description="The same for the `openai` provider.",
    )
    gemini_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("GEMINI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
        description="Gemini API key for the `veo` provider.",
    )
    gemini_base_url: str | None = Field(
        default=None,
        validation_alias=_env("GEMINI_BASE_URL"),
        description="Base URL of the Gemini API (default `https://generativelanguage.googleapis.com/`).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="Key for the `openai` provider.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of the OpenAI-compatible `/v1/videos` endpoint.",
    )
    openai_organization: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_ORGANIZATION", "OPENAI_ORG_ID"),
        description="Optional `OpenAI-Organization` header.",
    )
    openai_project: str | None = Field(
        default=None,
        validation_alias=_env("OPENAI_PROJECT", "OPENAI_PROJECT_ID"),
        description="Optional `OpenAI-Project` header.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SECRET_KEY"),
        description=(
            "Signs session cookies and JWTs; at least 32 characters. When unset, one is generated "
            "once into `<data dir>/secret_key`. Set it explicitly when several processes serve."
        ),
    )
    token_ttl_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)] = Field(
        default=60,
        validation_alias=_env("TOKEN_TTL_MINUTES"),
        description="Lifetime of JWT bearer tokens and browser sessions, in minutes.",
    )
    signed_url_ttl_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 7)] = Field(
        default=60,
        validation_alias=_env("SIGNED_URL_TTL_MINUTES"),
        description=(
            "Lifetime of the signed file URLs (`file_url`, `downloads`, the studio's media), in "
            "minutes; their expiry is rounded up to 10 minutes so a URL stays the same, and "
            "cacheable, for a while."
        ),
    )
    accel_redirect_prefix: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9._~/-]*/$",
        validation_alias=_env("ACCEL_REDIRECT_PREFIX"),
        description=(
            "Behind nginx: answer downloads from local storage with `X-Accel-Redirect: "
            "<prefix><key>` for an `internal` location that aliases the storage directory, so "
            "nginx sends the bytes (docs/deploy.md). Unset: the server sends them itself."
        ),
    )
    admin_email: str = Field(
        default="admin@localhost",
        validation_alias=_env("ADMIN_EMAIL"),
        description="Email of the admin that `serve` creates when there is no user at all.",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        validation_alias=_env("ADMIN_PASSWORD"),
        description=(
            "Password for that first admin; when unset a one-time password is generated and "
            "printed once."
        ),
    )
    max_prompt_length: Annotated[int, Field(ge=1, le=32000)] = Field(
        default=1000,
        validation_alias=_env("MAX_PROMPT_LENGTH"),
        description="Longest prompt accepted, in characters.",
    )
    default_video_quota: Annotated[int, Field(ge=0)] | None = Field(
        default=100,
        validation_alias=_env("DEFAULT_VIDEO_QUOTA"),
        description="Videos a new user may create per quota period; empty for unlimited.",
    )
    default_quota_period_days: Annotated[int, Field(ge=1, le=366)] = Field(
        default=30,
        validation_alias=_env("DEFAULT_QUOTA_PERIOD_DAYS"),
        description="Length of a new user's quota period, in days.",
    )
    default_monthly_budget: Annotated[Decimal, Field(ge=0)] | None = Field(
        default=None,
        validation_alias=_env("DEFAULT_MONTHLY_BUDGET"),
        description="A new user's monthly budget in USD (catalog prices); empty for unlimited.",
    )
    create_rate_limit: str = Field(
        default="30/minute",
        validation_alias=_env("CREATE_RATE_LIMIT"),
        description=(
            "Creates allowed per user and per API key, in the `limits` notation "
            "(`10/second`, `30/minute;500/day`)."
        ),
    )
    login_rate_limit: str = Field(
        default="10/minute;100/day",
        validation_alias=_env("LOGIN_RATE_LIMIT"),
        description=(
            "Sign-in attempts allowed per account and per client address, in the `limits` "
            "notation; each costs a password hash."
        ),
    )
    embedded_worker: bool = Field(
        default=True,
        validation_alias=_env("EMBEDDED_WORKER"),
        description=(
            "Whether `serve` runs the job worker inside itself; turn off for API-only servers "
            "when separate workers run."
        ),
    )
    provider_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=_env("PROVIDER_WEBHOOK_SECRET"),
        description=(
            "`whsec_<base64>` secret the provider signs its webhooks with (Standard Webhooks); "
            "`POST /webhooks/<provider>` answers 404 while it is unset."
        ),
    )
    webhook_allow_private_addresses: bool = Field(
        default=False,
        validation_alias=_env("WEBHOOK_ALLOW_PRIVATE_ADDRESSES"),
        description=(
            "Whether users' webhook endpoints may be private, loopback or link-local addresses "
            "(checked when registered and again, after DNS, on every delivery); off, so users "
            "can't make the worker POST into the operator's network."
        ),
    )
    worker_concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        default=4,
        validation_alias=_env("WORKER_CONCURRENCY"),
        description="Jobs one worker steps at the same time.",
    )
    worker_silence_seconds: Annotated[int, Field(ge=5, le=86400)] | None = Field(
        default=60,
        validation_alias=_env("WORKER_SILENCE_SECONDS"),
        description=(
            "With the worker outside the server (`REELFORGE_EMBEDDED_WORKER=false`), `/ready` "
            "answers 503 (`workers` entry) when no worker's heartbeat is this recent; empty "
            "leaves workers out of `/ready`."
        ),
    )
    lease_seconds: Annotated[int, Field(ge=10, le=3600)] = Field(
        default=120,
        validation_alias=_env("LEASE_SECONDS"),
        description="How long a worker holds a job before another may take it over.",
    )
    job_deadline_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = Field(
        default=180,
        validation_alias=_env("JOB_DEADLINE_MINUTES"),
        description="A video not finished this long after it was accepted fails (refunded).",
    )
    temporary_ttl_minutes: Annotated[int, Field(ge=10, le=7 * 24 * 60)] = Field(
        default=60,
        validation_alias=_env("TEMPORARY_TTL_MINUTES"),
        description=(
            "Uncommitted download objects under `tmp/` older than this are removed "
            "(what a killed worker leaves behind)."
        ),
    )
    deleted_retention_days: Annotated[int, Field(ge=0, le=3650)] = Field(
        default=7,
        validation_alias=_env("DELETED_RETENTION_DAYS"),
        description=(
            "Days after a video is deleted before housekeeping makes sure its archived "
            "objects are gone and forgets their keys (the row and its ledger stay)."
        ),
    )
    provider_rate_limit: str = Field(
        default="300/minute",
        validation_alias=_env("PROVIDER_RATE_LIMIT"),
        description=(
            "Engine steps that call a provider all workers together may make, per provider, in "
            "`limits` notation (a vendor's own setting wins); shared through Redis when configured."
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("CORS_ORIGINS"),
        description=(
            "Comma-separated origins (`https://app.example.com`) whose pages may call the API "
            "with credentials, such as a separately hosted front end; empty for none."
        ),
    )
    realtime_connections_per_user: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=20,
        validation_alias=_env("REALTIME_CONNECTIONS_PER_USER"),
        description=(
            "Live-update connections (SSE streams and socket.io clients together) one user may "
            "hold open across every server process (counted in Redis when configured; a killed "
            "process's places free up within 30 s); one more is refused (SSE 429, socket.io "
            "connect_error)."
        ),
    )
    realtime_heartbeat_seconds: Annotated[float, Field(ge=1, le=300)] = Field(
        default=15,
        validation_alias=_env("REALTIME_HEARTBEAT_SECONDS"),
        description=(
            "Seconds between the comment pings an idle SSE stream sends, so proxies keep it open."
        ),
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=_env("HOST"),
        description="Address `reelforge serve` binds to.",
    )
    port: Port = Field(
        default=8000,
        validation_alias=_env("PORT"),
        description="Port `reelforge serve` binds to.",
    )
    log_level: LogLevel = Field(
        default=LogLevel.INFO,
        validation_alias=_env("LOG_LEVEL"),
        description="Lowest log level written.",
    )
    log_format: LogFormat = Field(
        default=LogFormat.AUTO,
        validation_alias=_env("LOG_FORMAT"),
        description="`json`, `console`, or `auto` (JSON unless stderr is a terminal).",
    )

    @field_validator(
        "default_video_quota", "default_monthly_budget", "worker_silence_seconds", mode="before"
    )
    @classmethod
    def _empty_is_unlimited(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "create_rate_limit",
        "login_rate_limit",
        "provider_rate_limit",
        "fal_rate_limit",
        "veo_rate_limit",
        "openai_rate_limit",
    )
    @classmethod
    def _parses_as_rate_limit(cls, value: str | None) -> str | None:
        if not value:
            return None  # a vendor's own limit left empty: the shared default applies
        try:
            limits.parse_many(value)
        except ValueError:
            raise ValueError("must be like '30/minute' or '10/second;500/day'") from None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: give scheme://host[:port] without a path "
                    "(a wildcard can't carry credentials)"
                )
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: str) -> str:
        for name in _names(value):
            if name not in ProviderName.__members__.values():
                allowed = ", ".join(ProviderName)
                raise ValueError(f"unknown provider {name!r}; known: {allowed}")
        return value

    @property
    def enabled_providers(self) -> list[ProviderName]:
        """The default provider first, then the others configured, each once."""
        names = [self.provider, *(ProviderName(name) for name in _names(self.providers))]
        return list(dict.fromkeys(names))

    @field_validator("provider_webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("provider_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        key = secret.removeprefix("whsec_")
        try:
            valid = secret.startswith("whsec_") and bool(base64.b64decode(key, validate=True))
        except ValueError:  # binascii.Error is a ValueError
            valid = False
        if not valid:
            raise ValueError("must be whsec_ followed by base64, as the provider shows it")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        allowed = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        if value is not None and not value.startswith(allowed):
            raise ValueError(f"must start with one of {', '.join(allowed)}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _http_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.example.com/v1")
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://", "memory://")):
            raise ValueError("must be a file://, s3:// or memory:// URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'reelforge.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "objects").resolve().as_uri()

    @property
    def is_embedded_database(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class SettingsError(Exception):
    """A setting has a value Reelforge cannot use; the message names the variable."""


def _variable_for(loc: str) -> str:
    """Name every environment variable that feeds the field an error location points at."""
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if loc == name or loc in choices:
            return " or ".join(choices) if choices else f"REELFORGE_{name.upper()}"
    return loc


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into a message per variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = str(error["loc"][0]) if error["loc"] else "?"
            lines.append(f"{_variable_for(loc)}: {error['msg']} (got {error['input']!r})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
