"""SQLAlchemy models for every table of DESIGN.md §3; Alembic migrations are written from these."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reelforge.db.types import UTCDateTime
from reelforge.domain.clock import utcnow
from reelforge.domain.records import VENDOR_MESSAGE_LENGTH
from reelforge.domain.states import JobState

# Named constraints keep migrations identical on SQLite (which needs names for batch
# alterations) and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(12, 4)
# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        Decimal: Money,
    }


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="role"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Video(Base):
    """A video and its job: what was asked, where it is upstream, and what we archived."""

    __tablename__ = "videos"
    __table_args__ = (
        UniqueConstraint("provider", "provider_video_id"),
        UniqueConstraint("owner_id", "idempotency_key"),
        Index("ix_videos_owner_created", "owner_id", "created_at"),
        # The claim's index: only videos with a check to come, in the order they fall due, so
        # a claim reads the few rows due now, not every video ever made (finished ones have no
        # next check).
        Index(
            "ix_videos_due",
            "next_check_at",
            sqlite_where=text("next_check_at IS NOT NULL"),
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))
    provider_video_id: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(80))
    prompt: Mapped[str] = mapped_column(Text)
    size: Mapped[str] = mapped_column(String(20))
    seconds: Mapped[int] = mapped_column(Integer)
    input_reference_key: Mapped[str | None] = mapped_column(String(512))
    input_reference_type: Mapped[str | None] = mapped_column(String(64))
    remixed_from_video_id: Mapped[str | None] = mapped_column(
        ForeignKey("videos.id", ondelete="SET NULL"), index=True
    )
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(80))
    error_message: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]

    video_key: Mapped[str | None] = mapped_column(String(512))
    video_bytes: Mapped[int | None] = mapped_column(BigInteger)
    video_sha256: Mapped[str | None] = mapped_column(String(64))
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    thumbnail_bytes: Mapped[int | None] = mapped_column(BigInteger)
    thumbnail_sha256: Mapped[str | None] = mapped_column(String(64))
    spritesheet_key: Mapped[str | None] = mapped_column(String(512))
    spritesheet_bytes: Mapped[int | None] = mapped_column(BigInteger)
    spritesheet_sha256: Mapped[str | None] = mapped_column(String(64))

    cost_estimate: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_final: Mapped[Decimal | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    # Job columns (DESIGN.md §4): the engine claims rows whose next check is due.
    job_state: Mapped[JobState] = mapped_column(
        # Stored as its value in a VARCHAR, as before the enum: no type or constraint to migrate.
        Enum(
            JobState,
            native_enum=False,
            create_constraint=False,
            length=20,
            values_callable=lambda states: [state.value for state in states],
        ),
        default=JobState.ACCEPTED,
    )
    next_check_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    lease_version: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The engine's counters: since the create was last sent, and the tries of each step.
    submitting_since: Mapped[datetime | None]
    polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    poll_errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cleanup_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the vendor last said about the job: its place in the vendor's queue, its last log line.
    queue_position: Mapped[int | None] = mapped_column(Integer)
    vendor_message: Mapped[str | None] = mapped_column(String(VENDOR_MESSAGE_LENGTH))


class VideoEvent(Base):
    """Append-only audit trail of a video."""

    __tablename__ = "video_events"
    __table_args__ = (Index("ix_video_events_video", "video_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """Money moves: one reserve, settle or refund per video, never two; `import` (nothing
    spent here) marks a video brought in by `reelforge import`, which counts against no quota."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("video_id", "kind"),
        CheckConstraint("kind IN ('reserve', 'settle', 'refund', 'import')", name="kind"),
        Index("ix_ledger_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quota(Base):
    """Per-user limits; NULL means unlimited."""

    __tablename__ = "quotas"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    max_videos_per_period: Mapped[int | None] = mapped_column(Integer)
    period_days: Mapped[int] = mapped_column(Integer, default=30)
    monthly_budget: Mapped[Decimal | None]
    period_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookReceipt(Base):
    """Incoming webhook ids already seen, so a redelivery is recognised."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("provider", "webhook_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    webhook_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(80))
    provider_video_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    """A user's outgoing webhook target."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(String(128))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event sent (or to be sent) to one endpoint, with its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(80))
    video_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WorkerHeartbeat(Base):
    """When each job-engine process last said it was alive (`/ready`'s `workers`, doctor)."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class EndedSession(Base):
    """A browser session ended by logout; kept until its token would have expired anyway."""

    __tablename__ = "ended_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class UpstreamCall(Base):
    """How many calls one process made upstream, by provider, operation and outcome (`/metrics`
    adds the processes up); each process writes its own running totals."""

    __tablename__ = "upstream_calls"

    process: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    operation: Mapped[str] = mapped_column(String(20), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
