"""Raw escalations, kept only when the policy says `redaction.store_raw: true`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "raw_escalations",
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("placeholders", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_raw_escalations_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("escalation_id", name=op.f("pk_raw_escalations")),
    )


def downgrade() -> None:
    op.drop_table("raw_escalations")
