"""the engine's counters as columns (out of videos.metadata); the unused status column and index go

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from reelforge.db.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTERS = ("polls", "poll_errors", "archive_failures", "cleanup_attempts")
_VIDEOS = sa.table(
    "videos",
    sa.column("id", sa.String),
    sa.column("metadata", sa.JSON),
    sa.column("submitting_since", UTCDateTime()),
    *(sa.column(name, sa.Integer) for name in _COUNTERS),
)


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("submitting_since", UTCDateTime(), nullable=True))
        for name in _COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch.drop_index("ix_videos_claim")
        batch.drop_column("status")
    _move_counters_out_of_metadata()


def _move_counters_out_of_metadata() -> None:
    """Each video's counters, kept in its metadata JSON until now, into their columns."""
    connection = op.get_bind()
    rows = connection.execute(sa.select(_VIDEOS.c.id, _VIDEOS.c.metadata)).all()
    for video_id, metadata in rows:
        if not metadata or not any(key in metadata for key in (*_COUNTERS, "submitting_since")):
            continue
        values: dict[str, Any] = {name: int(metadata.pop(name, 0) or 0) for name in _COUNTERS}
        since = metadata.pop("submitting_since", None)
        values["submitting_since"] = datetime.fromisoformat(since) if since else None
        connection.execute(
            _VIDEOS.update().where(_VIDEOS.c.id == video_id).values(metadata=metadata, **values)
        )


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="queued")
        )
        batch.create_index("ix_videos_claim", ["job_state", "next_check_at"])
        for name in (*_COUNTERS, "submitting_since"):
            batch.drop_column(name)
