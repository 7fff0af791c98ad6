"""Decisions people need: the arguments a person edited before approving, and the
approvals of an escalation that needs several people.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("edited_args", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("edited_by", sa.String(200), nullable=True))
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_approvals_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint(
            "escalation_id", "approver", name=op.f("uq_approvals_escalation_id_approver")
        ),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("edited_by")
        batch.drop_column("edited_args")
