"""Escalations and their cards in the store: typed reads, and the compare-and-set writes
that make exactly one decision win. No business rules: the service says what to write.

The statements on every action's path are built once, with bind parameters: building a
statement per call costs more than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from bot.db import approvals, outbox
from bot.db.cards import NewCard, add_cards, card_record, cards_of
from bot.db.engine import upsert
from bot.db.models import CardRow, EscalationRow
from bot.db.outbox import NewItem, Topic
from bot.records import OPEN_STATES, CardRecord, EscalationRecord, PageState

_ESCALATIONS = EscalationRow.__table__
_CARDS = CardRow.__table__


@dataclass(frozen=True)
class NewEscalation:
    """What intake stores for a new escalation (its payload is the agent's JSON)."""

    id: str
    task_id: str
    agent: str
    task_type: str | None
    kind: str
    severity: str
    confidence: float | None
    reason: str
    payload: dict[str, Any]
    tier: str
    channel: str
    at: datetime
    policy_version: str
    next_action_at: datetime | None
    page: bool
    ladder: str | None = None
    route: str | None = None
    ack_timeout_seconds: int | None = None
    approvals_needed: int = 1
    policy_note: str | None = None
    decided: str | None = None  # the outcome, when the policy decided it at intake
    decision_rule: str | None = None


def record_of(
    row: Row[Any] | EscalationRow,
    cards: Sequence[CardRecord] = (),
    page: PageState | None = None,
    approved_by: Sequence[str] = (),
) -> EscalationRecord:
    """From an ORM object or a Core row of `escalations` (both read by attribute)."""
    payload = row.payload or {}
    page = page or PageState()
    return EscalationRecord(
        id=row.id,
        task_id=row.task_id,
        agent=row.agent,
        task_type=row.task_type,
        kind=row.kind,
        severity=row.severity,
        confidence=row.confidence,
        reason=row.reason,
        action=payload.get("action"),
        context=payload.get("context") or {},
        state=row.state,
        tier=row.tier,
        created_at=row.created_at,
        policy_version=row.policy_version,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.decision_comment,
        instruction=row.decision_instruction,
        next_action_at=row.next_action_at,
        cards=tuple(sorted(cards, key=lambda card: card.id)),
        page_wanted=page.wanted,
        page_sent=page.sent,
        page_error=page.error,
        page_attempts=page.attempts,
        tier_entered_at=row.tier_entered_at,
        ladder=row.ladder,
        route=row.route,
        ack_timeout=(
            timedelta(seconds=row.ack_timeout_seconds) if row.ack_timeout_seconds else None
        ),
        approvals_needed=row.approvals_needed or 1,
        decision_rule=row.decision_rule,
        policy_note=row.policy_note,
        edited_args=row.edited_args,
        edited_by=row.edited_by,
        approvals=tuple(approved_by),
    )


_ESCALATION = select(*_ESCALATIONS.c).where(_ESCALATIONS.c.id == bindparam("p_escalation_id"))


def _complete(session: Session, row: Row[Any] | None) -> EscalationRecord | None:
    if row is None:
        return None
    # Only an escalation that needs several people has approvals to read.
    approved_by = approvals.of(session, row.id) if (row.approvals_needed or 1) > 1 else ()
    return record_of(
        row, cards_of(session, row.id), outbox.page_state(session, row.id), approved_by
    )


def lock(session: Session, escalation_id: str) -> EscalationRecord | None:
    """The escalation, its row locked until the transaction ends: approvers of one
    escalation take their turns (SQLite's writers take theirs anyway)."""
    row = (
        session.connection()
        .execute(
            select(*_ESCALATIONS.c).where(_ESCALATIONS.c.id == escalation_id).with_for_update()
        )
        .first()
    )
    return _complete(session, row)


def set_edit(session: Session, escalation_id: str, args: dict[str, Any], by: str) -> None:
    """The arguments now under approval, as `by` edited them."""
    session.connection().execute(
        update(_ESCALATIONS)
        .where(_ESCALATIONS.c.id == escalation_id)
        .values(edited_args=args, edited_by=by)
    )


def find(session: Session, escalation_id: str) -> EscalationRecord | None:
    """The escalation with its cards and paging state."""
    row = session.connection().execute(_ESCALATION, {"p_escalation_id": escalation_id}).first()
    return _complete(session, row)


def find_many(session: Session, escalation_ids: Sequence[str]) -> dict[str, EscalationRecord]:
    """`find` for many at once, in a few statements (the Slack worker's claim of a batch)."""
    if not escalation_ids:
        return {}
    wanted = list(dict.fromkeys(escalation_ids))
    connection = session.connection()
    rows = list(connection.execute(select(*_ESCALATIONS.c).where(_ESCALATIONS.c.id.in_(wanted))))
    cards: dict[str, list[CardRecord]] = {}
    for card in connection.execute(
        select(*_CARDS.c).where(_CARDS.c.escalation_id.in_(wanted)).order_by(_CARDS.c.id)
    ):
        cards.setdefault(card.escalation_id, []).append(card_record(card))
    pages = outbox.page_states(session, wanted)
    return {
        row.id: record_of(
            row,
            cards.get(row.id, ()),
            pages.get(row.id),
            approvals.of(session, row.id) if (row.approvals_needed or 1) > 1 else (),
        )
        for row in rows
    }


def exists(session: Session, escalation_id: str) -> bool:
    row = (
        session.connection()
        .execute(select(_ESCALATIONS.c.id).where(_ESCALATIONS.c.id == escalation_id))
        .first()
    )
    return row is not None


def task_of(session: Session, escalation_id: str) -> str | None:
    return (
        session.connection()
        .execute(select(_ESCALATIONS.c.task_id).where(_ESCALATIONS.c.id == escalation_id))
        .scalar_one_or_none()
    )


def values_of(new: NewEscalation) -> dict[str, Any]:
    return {
        "id": new.id,
        "task_id": new.task_id,
        "agent": new.agent,
        "task_type": new.task_type,
        "kind": new.kind,
        "severity": new.severity,
        "confidence": new.confidence,
        "reason": new.reason,
        "payload": new.payload,
        "state": new.decided or "open",
        "tier": new.tier,
        "tier_entered_at": new.at,
        "created_at": new.at,
        "policy_version": new.policy_version,
        "next_action_at": None if new.decided else new.next_action_at,
        "ladder": new.ladder,
        "route": new.route,
        "ack_timeout_seconds": new.ack_timeout_seconds,
        "approvals_needed": new.approvals_needed,
        "policy_note": new.policy_note,
        "decided_by": "policy" if new.decided else None,
        "decided_at": new.at if new.decided else None,
        "decision_rule": new.decision_rule,
    }


def owe_delivery(session: Session, news: Sequence[NewEscalation]) -> None:
    """Their first cards (and pages, at a paging tier); none for what the policy decided."""
    waiting = [new for new in news if not new.decided]
    if not waiting:
        return
    add_cards(
        session,
        [NewCard(new.id, new.tier, new.channel, new.severity) for new in waiting],
        waiting[0].at,
    )
    for new in waiting:
        if new.page:
            owe_pages(session, [new.id], new.at)


def insert(session: Session, new: NewEscalation) -> EscalationRecord | None:
    """Insert it with its first card (and its page, when its tier pages) unless the id
    exists, in one statement (INSERT … ON CONFLICT DO NOTHING RETURNING); None when
    another writer got there first. The record comes without its cards."""
    connection = session.connection()
    row = connection.execute(
        upsert(connection.dialect.name, _ESCALATIONS)
        .values(values_of(new))
        .on_conflict_do_nothing(index_elements=[_ESCALATIONS.c.id])
        .returning(*_ESCALATIONS.c)
    ).first()
    if row is None:
        return None
    owe_delivery(session, [new])
    return record_of(row)


def owe_pages(session: Session, escalation_ids: Sequence[str], at: datetime) -> None:
    """Each escalation reached a paging tier: PagerDuty is owed its trigger."""
    outbox.add(session, [NewItem(Topic.PAGE, i, i, "trigger") for i in escalation_ids], at)


_ACKNOWLEDGE = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_escalation_id"), _ESCALATIONS.c.state == "open")
    .values(
        state="acknowledged",
        acknowledged_by=bindparam("p_by"),
        acknowledged_at=bindparam("p_at"),
        next_action_at=None,
    )
    .returning(*_ESCALATIONS.c)
)
_DECIDE = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_escalation_id"), _ESCALATIONS.c.state.in_(OPEN_STATES))
    .values(
        state=bindparam("p_outcome"),
        decided_by=bindparam("p_by"),
        decided_at=bindparam("p_at"),
        decision_comment=bindparam("p_comment"),
        decision_instruction=bindparam("p_instruction"),
        next_action_at=None,
        lease_owner=None,
        lease_until=None,
    )
    .returning(*_ESCALATIONS.c)
)


def acknowledge(
    session: Session, escalation_id: str, by: str, at: datetime
) -> EscalationRecord | None:
    """Compare-and-set open → acknowledged; the changed escalation, or None if it was not
    open. One that has paged owes PagerDuty the acknowledge too."""
    params = {"p_escalation_id": escalation_id, "p_by": by, "p_at": at}
    row = session.connection().execute(_ACKNOWLEDGE, params).first()
    if row is not None:
        outbox.want(session, Topic.PAGE, [escalation_id], "acknowledge", at)
    return _complete(session, row)


def decide(
    session: Session,
    escalation_id: str,
    *,
    outcome: str,
    by: str,
    at: datetime,
    comment: str | None,
    instruction: str | None,
) -> EscalationRecord | None:
    """Compare-and-set open or acknowledged → `outcome`: exactly one caller gets the
    escalation; every other (a second click, a replica, a retry) gets None. One that has
    paged owes PagerDuty the resolve."""
    params = {
        "p_escalation_id": escalation_id,
        "p_outcome": outcome,
        "p_by": by,
        "p_at": at,
        "p_comment": comment,
        "p_instruction": instruction,
    }
    row = session.connection().execute(_DECIDE, params).first()
    if row is not None:
        outbox.want(session, Topic.PAGE, [escalation_id], "resolve", at)
    return _complete(session, row)


_DECIDED_IDS = select(_ESCALATIONS.c.id).where(_ESCALATIONS.c.decided_at >= bindparam("p_since"))
_DECIDED = select(*_ESCALATIONS.c).where(_ESCALATIONS.c.decided_at >= bindparam("p_since"))


def decided_since(session: Session, since: datetime) -> list[str]:
    """The ids of escalations decided at or after `since` (by the index on decided_at)."""
    return list(session.connection().execute(_DECIDED_IDS, {"p_since": since}).scalars())


def decided_records_since(session: Session, since: datetime) -> list[EscalationRecord]:
    """The same escalations in full (without their cards)."""
    rows = session.connection().execute(_DECIDED, {"p_since": since})
    return [record_of(row) for row in rows]


def for_task(session: Session, task_id: str, limit: int = 20) -> list[EscalationRecord]:
    rows = session.connection().execute(
        select(*_ESCALATIONS.c)
        .where(_ESCALATIONS.c.task_id == task_id)
        .order_by(_ESCALATIONS.c.created_at.desc())
        .limit(limit)
    )
    return [record_of(row) for row in rows]


def newest_of_task(session: Session, task_id: str) -> EscalationRecord | None:
    row = (
        session.connection()
        .execute(
            select(*_ESCALATIONS.c)
            .where(_ESCALATIONS.c.task_id == task_id)
            .order_by(_ESCALATIONS.c.created_at.desc())
            .limit(1)
        )
        .first()
    )
    return _complete(session, row)


def open_ones(session: Session, limit: int = 50) -> list[EscalationRecord]:
    rows = session.connection().execute(
        select(*_ESCALATIONS.c)
        .where(_ESCALATIONS.c.state.in_(OPEN_STATES))
        .order_by(_ESCALATIONS.c.created_at)
        .limit(limit)
    )
    return [record_of(row) for row in rows]


def for_card_message(session: Session, channel: str, ts: str) -> EscalationRecord | None:
    """The escalation whose card is the message (channel, ts): a thread's parent."""
    escalation_id = (
        session.connection()
        .execute(
            select(_CARDS.c.escalation_id).where(_CARDS.c.channel == channel, _CARDS.c.ts == ts)
        )
        .scalar_one_or_none()
    )
    return find(session, escalation_id) if escalation_id else None
