"""An index on escalations.decided_at: every sweep reads the decisions of the last seven
days (the life of a `decision:{id}` key) to write back any that Redis lost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_escalations_decided_at"), "escalations", ["decided_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_escalations_decided_at"), table_name="escalations")
