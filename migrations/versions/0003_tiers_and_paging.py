"""Paging state of an escalation: the PagerDuty event it calls for and what was sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("page_wanted", sa.String(16), nullable=True))
        batch.add_column(sa.Column("page_sent", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("page_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("page_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("page_next_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("page_claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_escalations_page_next_attempt_at"), ["page_next_attempt_at"])
    with op.batch_alter_table("escalations") as batch:
        batch.alter_column("page_attempts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index(batch.f("ix_escalations_page_next_attempt_at"))
        for column in (
            "page_claimed_until",
            "page_next_attempt_at",
            "page_error",
            "page_attempts",
            "page_sent",
            "page_wanted",
        ):
            batch.drop_column(column)
