"""Slack delivery: retries of unposted cards, the audit cursor, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_cards_next_attempt_at"), ["next_attempt_at"])
    with op.batch_alter_table("cards") as batch:
        batch.alter_column("attempts", server_default=None)

    cursor = op.create_table(
        "notify_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_cursor")),
    )
    # Start where the audit log is now: history is not announced again.
    head = op.get_bind().execute(sa.text("SELECT seq FROM audit_head WHERE id = 1")).scalar()
    op.bulk_insert(cursor, [{"id": 1, "seq": head or 0, "failures": 0}])

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("notify_cursor")
    with op.batch_alter_table("cards") as batch:
        batch.drop_index(batch.f("ix_cards_next_attempt_at"))
        batch.drop_column("last_error")
        batch.drop_column("claimed_until")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
