"""ledger rows of kind `import` (imported videos count against no quota); upstream call counters

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "kind IN ('reserve', 'settle', 'refund', 'import')"
_KINDS_BEFORE = "kind IN ('reserve', 'settle', 'refund')"


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_constraint(op.f("ck_ledger_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_ledger_kind"), _KINDS)
    op.create_table(
        "upstream_calls",
        sa.Column("process", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "process", "provider", "operation", "code", name=op.f("pk_upstream_calls")
        ),
    )


def downgrade() -> None:
    op.drop_table("upstream_calls")
    op.execute("DELETE FROM ledger WHERE kind = 'import'")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_constraint(op.f("ck_ledger_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_ledger_kind"), _KINDS_BEFORE)
