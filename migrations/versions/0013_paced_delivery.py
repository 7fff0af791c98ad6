"""Paced delivery: the outbox's rank (most severe first), digests of low and medium
cards, and the digest a card was posted in.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rank of each severity: what is most severe goes out first.
RANKS = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint("channel", "ts", name=op.f("uq_digests_channel_ts")),
    )
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_cards_digest_id"), ["digest_id"])
        batch.create_foreign_key(
            batch.f("fk_cards_digest_id_digests"), "digests", ["digest_id"], ["id"]
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("rank", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    bind = op.get_bind()
    for severity, rank in RANKS.items():
        bind.execute(
            sa.text(
                "UPDATE outbox SET rank = :rank WHERE topic = 'card' AND escalation_id IN"
                " (SELECT id FROM escalations WHERE severity = :severity)"
            ),
            {"rank": rank, "severity": severity},
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("rank")
    with op.batch_alter_table("cards") as batch:
        batch.drop_constraint(batch.f("fk_cards_digest_id_digests"), type_="foreignkey")
        batch.drop_index(batch.f("ix_cards_digest_id"))
        batch.drop_column("digest_id")
    op.drop_table("digests")
