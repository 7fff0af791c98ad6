"""Indexes for the metrics and the report: unacknowledged escalations by severity and
deadline rule (the `escbot_open_escalations_past_sla` gauge, counted from the index at
every scrape), and escalations by when they were opened (`escbot report --since`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_escalations_open_sla",
        "escalations",
        ["state", "severity", "ladder", "ack_timeout_seconds", "created_at"],
    )
    op.create_index(op.f("ix_escalations_created_at"), "escalations", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_escalations_created_at"), table_name="escalations")
    op.drop_index("ix_escalations_open_sla", table_name="escalations")
