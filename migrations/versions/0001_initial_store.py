"""The initial store: escalations, their cards, kill and pause state, the audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
APPEND_ONLY_MESSAGE = "audit_log is append-only: rows are never updated or deleted"


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("task_type", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        _when("tier_entered_at"),
        _when("created_at"),
        sa.Column("policy_version", sa.String(32), nullable=False),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        _when("acknowledged_at", nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        _when("decided_at", nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.Column("decision_instruction", sa.Text(), nullable=True),
        _when("next_action_at", nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        _when("lease_until", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_task_id"), "escalations", ["task_id"])
    op.create_index(op.f("ix_escalations_state"), "escalations", ["state"])
    op.create_index(op.f("ix_escalations_next_action_at"), "escalations", ["next_action_at"])

    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        _when("created_at"),
        _when("posted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_cards_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("channel", "ts", name=op.f("uq_cards_channel_ts")),
    )
    op.create_index(op.f("ix_cards_escalation_id"), "cards", ["escalation_id"])

    op.create_table(
        "controls",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        _when("set_at"),
        sa.Column("escalation_id", sa.String(128), nullable=True),
        sa.Column("lifted_by", sa.String(200), nullable=True),
        _when("lifted_at", nullable=True),
        sa.Column("revive_requested_by", sa.String(200), nullable=True),
        _when("revive_requested_at", nullable=True),
        sa.PrimaryKeyConstraint("kind", "target", name=op.f("pk_controls")),
    )
    op.create_index("ix_controls_active", "controls", ["active"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _when("at"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=True),
        sa.Column("escalation_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("policy_version", sa.String(32), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_task_id"), "audit_log", ["task_id"])
    op.create_index(op.f("ix_audit_log_escalation_id"), "audit_log", ["escalation_id"])

    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])

    op.create_table(
        "rejected_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(64), nullable=False),
        _when("received_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_entries")),
    )
    op.create_index(op.f("ix_rejected_entries_received_at"), "rejected_entries", ["received_at"])

    op.create_table(
        "pending_effects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        _when("created_at"),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_effects")),
    )

    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("pending_effects")
    op.drop_table("rejected_entries")
    op.drop_table("audit_head")
    op.drop_table("audit_log")
    op.drop_table("controls")
    op.drop_table("cards")
    op.drop_table("escalations")


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
