"""Automated triggers: their firings (one active per trigger and subject), and the stream
a rejected entry came from.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trigger_firings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("then", sa.String(64), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("escalation_id", sa.String(128), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_firings")),
    )
    op.create_index(op.f("ix_trigger_firings_subject"), "trigger_firings", ["subject"])
    op.create_index(op.f("ix_trigger_firings_escalation_id"), "trigger_firings", ["escalation_id"])
    op.create_index(
        "ix_trigger_firings_active",
        "trigger_firings",
        ["trigger", "subject"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    with op.batch_alter_table("rejected_entries") as batch:
        batch.add_column(
            sa.Column("stream", sa.String(32), nullable=False, server_default="escalations")
        )
    with op.batch_alter_table("rejected_entries") as batch:
        batch.alter_column("stream", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("rejected_entries") as batch:
        batch.drop_column("stream")
    op.drop_index("ix_trigger_firings_active", table_name="trigger_firings")
    op.drop_index(op.f("ix_trigger_firings_escalation_id"), table_name="trigger_firings")
    op.drop_index(op.f("ix_trigger_firings_subject"), table_name="trigger_firings")
    op.drop_table("trigger_firings")
