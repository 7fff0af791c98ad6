"""One outbox: unposted cards and owed PagerDuty events become rows of `outbox`.

Before, cards carried their own retry columns (attempts, next_attempt_at, claimed_until,
last_error) and escalations six `page_*` columns: two queues with the same claim, lease
and backoff. Both move into `outbox`, existing rows included, and back on downgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE_COLUMNS = (
    "page_claimed_until",
    "page_next_attempt_at",
    "page_error",
    "page_attempts",
    "page_sent",
    "page_wanted",
)
CARD_COLUMNS = ("last_error", "claimed_until", "next_attempt_at", "attempts")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("wanted", sa.String(16), nullable=True),
        sa.Column("sent", sa.String(16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_outbox_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("topic", "key", name=op.f("uq_outbox_topic_key")),
    )
    op.create_index("ix_outbox_due", "outbox", ["topic", "next_attempt_at"])
    op.create_index(op.f("ix_outbox_escalation_id"), "outbox", ["escalation_id"])

    bind = op.get_bind()
    bind.execute(
        sa.text(
            "INSERT INTO outbox (topic, key, escalation_id, wanted, sent, attempts, last_error,"
            " next_attempt_at, claimed_until, created_at)"
            " SELECT 'card', CAST(id AS VARCHAR(128)), escalation_id, 'post',"
            " CASE WHEN ts IS NULL THEN NULL ELSE 'post' END, attempts, last_error,"
            " CASE WHEN ts IS NULL THEN next_attempt_at ELSE NULL END, claimed_until, created_at"
            " FROM cards"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO outbox (topic, key, escalation_id, wanted, sent, attempts, last_error,"
            " next_attempt_at, claimed_until, created_at)"
            " SELECT 'page', id, id, page_wanted, page_sent, page_attempts, page_error,"
            " page_next_attempt_at, page_claimed_until, created_at"
            " FROM escalations WHERE page_wanted IS NOT NULL"
        )
    )
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index(batch.f("ix_escalations_page_next_attempt_at"))
        for column in PAGE_COLUMNS:
            batch.drop_column(column)
    with op.batch_alter_table("cards") as batch:
        batch.drop_index(batch.f("ix_cards_next_attempt_at"))
        for column in CARD_COLUMNS:
            batch.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_cards_next_attempt_at"), ["next_attempt_at"])
    with op.batch_alter_table("cards") as batch:
        batch.alter_column("attempts", server_default=None)
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

    bind = op.get_bind()

    def from_outbox(topic: str, column: str, key: str) -> str:
        return f"(SELECT o.{column} FROM outbox o WHERE o.topic = '{topic}' AND o.key = {key})"

    card_key = "CAST(cards.id AS VARCHAR(128))"
    bind.execute(
        sa.text(
            "UPDATE cards SET"
            f" attempts = COALESCE({from_outbox('card', 'attempts', card_key)}, 0),"
            f" last_error = {from_outbox('card', 'last_error', card_key)},"
            f" next_attempt_at = {from_outbox('card', 'next_attempt_at', card_key)},"
            f" claimed_until = {from_outbox('card', 'claimed_until', card_key)}"
        )
    )
    page_key = "escalations.id"
    bind.execute(
        sa.text(
            "UPDATE escalations SET"
            f" page_wanted = {from_outbox('page', 'wanted', page_key)},"
            f" page_sent = {from_outbox('page', 'sent', page_key)},"
            f" page_attempts = COALESCE({from_outbox('page', 'attempts', page_key)}, 0),"
            f" page_error = {from_outbox('page', 'last_error', page_key)},"
            f" page_next_attempt_at = {from_outbox('page', 'next_attempt_at', page_key)},"
            f" page_claimed_until = {from_outbox('page', 'claimed_until', page_key)}"
            " WHERE EXISTS"
            " (SELECT 1 FROM outbox o WHERE o.topic = 'page' AND o.key = escalations.id)"
        )
    )
    op.drop_index(op.f("ix_outbox_escalation_id"), table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
