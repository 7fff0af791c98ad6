"""Typed SQLAlchemy models. Alembic migrations under `migrations/` must match them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.db.types import UTCDateTime
from bot.records import OPEN_STATES

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    # Every model here maps one Table, which the store uses for Core statements.
    __table__: ClassVar[Table]
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class EscalationRow(Base):
    """One escalation. `state` is open, acknowledged, or its outcome once decided."""

    __tablename__ = "escalations"
    __table_args__ = (
        # The past-SLA gauge: unacknowledged ones by severity and deadline rule, by age.
        Index(
            "ix_escalations_open_sla",
            "state",
            "severity",
            "ladder",
            "ack_timeout_seconds",
            "created_at",
        ),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), index=True)
    agent: Mapped[str] = mapped_column(String(200))
    task_type: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float | None]
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    tier: Mapped[str] = mapped_column(String(64))
    tier_entered_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(index=True)  # the report's window
    policy_version: Mapped[str] = mapped_column(String(32))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(index=True)  # reconcile's window
    decision_comment: Mapped[str | None] = mapped_column(Text)
    decision_instruction: Mapped[str | None] = mapped_column(Text)
    next_action_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    # What the policy gave it when it was opened (a reload does not change them): its
    # ladder and the route that chose it, the severity's deadline replacing each tier's,
    # the approvals it needs, the rule that decided it, and why a person must decide.
    ladder: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(200))
    ack_timeout_seconds: Mapped[int | None]
    approvals_needed: Mapped[int] = mapped_column(default=1)
    decision_rule: Mapped[str | None] = mapped_column(String(200))
    policy_note: Mapped[str | None] = mapped_column(Text)
    # The arguments under approval once a person edited them (and, decided, approved).
    edited_args: Mapped[dict[str, Any] | None]
    edited_by: Mapped[str | None] = mapped_column(String(200))

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class CardRow(Base):
    """Where an escalation's card is (one per tier it reached). `ts` is unset until posted."""

    __tablename__ = "cards"
    __table_args__ = (UniqueConstraint("channel", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    escalation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("escalations.id"), index=True
    )
    tier: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(Text)
    superseded: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    # The digest it went out in (a low or medium card in a flood): `ts` stays unset.
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id"), index=True)


class DigestRow(Base):
    """One message standing for many low and medium cards of one channel."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("channel", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    posted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class OutboxRow(Base):
    """Something owed to the world outside (a card to post, a PagerDuty event to send),
    kept until it lands. One row per thing (`topic`, `key`): `wanted` is what it calls
    for now, `sent` the last that landed; `next_attempt_at` is unset once nothing is owed.
    Senders claim rows with a lease (`claimed_until`), so replicas never send one twice."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("topic", "key"),
        Index("ix_outbox_due", "topic", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    # The escalation it belongs to; unset for what belongs to none (a finished task's
    # review card).
    escalation_id: Mapped[str | None] = mapped_column(
        String(128), ForeignKey("escalations.id"), index=True
    )
    wanted: Mapped[str | None] = mapped_column(String(16))
    sent: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    # Claimed lowest first: a card's is its severity's (critical 0 … low 3).
    rank: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class ControlRow(Base):
    """The desired kill and pause state; Redis holds its projection for agents."""

    __tablename__ = "controls"
    __table_args__ = (Index("ix_controls_active", "active"),)

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    target: Mapped[str] = mapped_column(String(128), primary_key=True)
    active: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime]
    escalation_id: Mapped[str | None] = mapped_column(String(128))
    lifted_by: Mapped[str | None] = mapped_column(String(200))
    lifted_at: Mapped[datetime | None]
    revive_requested_by: Mapped[str | None] = mapped_column(String(200))
    revive_requested_at: Mapped[datetime | None]


class AuditRow(Base):
    """One action. Never updated or deleted (database triggers refuse it)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(128), index=True)
    escalation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[dict[str, Any] | None]
    detail: Mapped[dict[str, Any] | None]
    policy_version: Mapped[str] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row naming the chain's last link; locking it serialises appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


class RejectedEntryRow(Base):
    """A stream entry (of `escalations` or `agent-signals`) that was refused, and why."""

    __tablename__ = "rejected_entries"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(32), default="escalations")
    stream_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class PendingEffectRow(Base):
    """A control-plane write that Redis refused; reconcile replays it from current truth."""

    __tablename__ = "pending_effects"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(128))
    value: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    error: Mapped[str] = mapped_column(Text)


class NotifyCursor(Base):
    """How far the Slack worker has followed the audit log (announcements, card updates).

    One row; a worker holds it through a lease so that replicas never announce twice."""

    __tablename__ = "notify_cursor"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class ApprovalRow(Base):
    """One person's approval of an escalation that needs several (a quorum): of the
    arguments under approval when they gave it (an edit starts the count again)."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("escalation_id", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    escalation_id: Mapped[str] = mapped_column(String(128), ForeignKey("escalations.id"))
    approver: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class RawEscalationRow(Base):
    """An escalation as the agent sent it, before redaction, and its placeholders: kept
    only under the policy's `redaction.store_raw: true`, shown only by `escbot show
    --raw`."""

    __tablename__ = "raw_escalations"

    escalation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("escalations.id"), primary_key=True
    )
    payload: Mapped[dict[str, Any]]
    placeholders: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class ReviewRow(Base):
    """Work sampled for a person to look at afterwards: a request the policy decided
    alone (`decision`) or a finished task (`task`). `verdict` stays unset until reviewed
    (looks_right or flagged; `verdict_paused` is what a flag paused). Its card is owed
    through the outbox; `channel` and `ts` say where it is once posted."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("subject", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(128))
    task_id: Mapped[str] = mapped_column(String(128), index=True)
    agent: Mapped[str] = mapped_column(String(200))
    task_type: Mapped[str | None] = mapped_column(String(200))
    escalation_id: Mapped[str | None] = mapped_column(String(128))
    rule: Mapped[str | None] = mapped_column(String(200))
    rate: Mapped[float]
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))
    verdict_by: Mapped[str | None] = mapped_column(String(200))
    verdict_at: Mapped[datetime | None]
    verdict_note: Mapped[str | None] = mapped_column(Text)
    verdict_paused: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    posted_at: Mapped[datetime | None]


class TriggerFiring(Base):
    """A trigger that fired for a task or an agent (`subject`), and what it did. While it
    is `active` the trigger does not fire again for that subject: it is released when an
    operator lifts what it did, or (escalate only) when its escalation is decided."""

    __tablename__ = "trigger_firings"
    __table_args__ = (
        Index(
            "ix_trigger_firings_active",
            "trigger",
            "subject",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    task_id: Mapped[str] = mapped_column(String(128))
    agent: Mapped[str] = mapped_column(String(200))
    then: Mapped[str] = mapped_column(String(64))
    value: Mapped[float]
    detail: Mapped[dict[str, Any]]
    escalation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    fired_at: Mapped[datetime]
    active: Mapped[bool]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(200))


class PolicyState(Base):
    """The policy version in force, as the replicas agree on it: the one that swaps it
    first records the change, the others find it done."""

    __tablename__ = "policy_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[str] = mapped_column(String(32))
    refused_version: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[datetime]


class IdempotencyKey(Base):
    """A request already handled (a Slack message relayed, whatever Slack retries)."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
