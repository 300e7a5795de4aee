"""the claim's index: videos with a check to come, by when it falls due

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = sa.text("next_check_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_videos_due",
        "videos",
        ["next_check_at"],
        unique=False,
        sqlite_where=_DUE,
        postgresql_where=_DUE,
    )


def downgrade() -> None:
    op.drop_index("ix_videos_due", table_name="videos")
