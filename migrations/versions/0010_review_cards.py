"""Review cards: where each sampled review's card is, what a flag paused, and outbox rows
that belong to no escalation (a finished task's review card). Reviews still waiting for a
verdict are owed their card at once.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("posted_at", "ts", "channel", "verdict_paused")


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("verdict_paused", sa.String(200), nullable=True))
        batch.add_column(sa.Column("channel", sa.String(32), nullable=True))
        batch.add_column(sa.Column("ts", sa.String(32), nullable=True))
        batch.add_column(sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("escalation_id", existing_type=sa.String(128), nullable=True)
    op.get_bind().execute(
        sa.text(
            "INSERT INTO outbox (topic, key, escalation_id, wanted, sent, attempts,"
            " next_attempt_at, created_at)"
            " SELECT 'review', CAST(id AS VARCHAR(128)), escalation_id, 'post', NULL, 0,"
            " created_at, created_at"
            " FROM reviews WHERE verdict IS NULL"
        )
    )


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM outbox WHERE topic = 'review'"))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("escalation_id", existing_type=sa.String(128), nullable=False)
    with op.batch_alter_table("reviews") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
