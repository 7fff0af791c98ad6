"""Policy as code: what the policy gave each escalation, sampled reviews, the version in
force.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("policy_note", "decision_rule", "approvals_needed", "ack_timeout_seconds", "route")


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("ladder", sa.String(64), nullable=True))
        batch.add_column(sa.Column("route", sa.String(200), nullable=True))
        batch.add_column(sa.Column("ack_timeout_seconds", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("approvals_needed", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("decision_rule", sa.String(200), nullable=True))
        batch.add_column(sa.Column("policy_note", sa.Text(), nullable=True))
    with op.batch_alter_table("escalations") as batch:
        batch.alter_column("approvals_needed", server_default=None)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("task_type", sa.String(200), nullable=True),
        sa.Column("escalation_id", sa.String(128), nullable=True),
        sa.Column("rule", sa.String(200), nullable=True),
        sa.Column("rate", sa.Double(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("verdict_by", sa.String(200), nullable=True),
        sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verdict_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("subject", "subject_id", name=op.f("uq_reviews_subject_subject_id")),
    )
    op.create_index(op.f("ix_reviews_task_id"), "reviews", ["task_id"])
    op.create_index(op.f("ix_reviews_created_at"), "reviews", ["created_at"])
    op.create_table(
        "policy_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("refused_version", sa.String(32), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_state")),
    )


def downgrade() -> None:
    op.drop_table("policy_state")
    op.drop_index(op.f("ix_reviews_created_at"), table_name="reviews")
    op.drop_index(op.f("ix_reviews_task_id"), table_name="reviews")
    op.drop_table("reviews")
    with op.batch_alter_table("escalations") as batch:
        for column in (*COLUMNS, "ladder"):
            batch.drop_column(column)
