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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import outbox
from bot.db.models import CardRow, EscalationRow
from bot.db.outbox import NewItem, Topic
from bot.records import OPEN_STATES, CardRecord, EscalationRecord, PageState

_ESCALATIONS = EscalationRow.__table__
_CARDS = CardRow.__table__
CARD_POST = "post"


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
    next_action_at: datetime
    page: bool


@dataclass(frozen=True)
class NewCard:
    escalation_id: str
    tier: str
    channel: str


@dataclass(frozen=True)
class Climb:
    escalation_id: str
    tier: str
    next_action_at: datetime


def _card(row: Row[Any]) -> CardRecord:
    return CardRecord(
        tier=row.tier,
        channel=row.channel,
        ts=row.ts,
        permalink=row.permalink,
        superseded=row.superseded,
        posted_at=row.posted_at,
        id=row.id,
    )


def record_of(
    row: Row[Any] | EscalationRow,
    cards: Sequence[CardRecord] = (),
    page: PageState | None = None,
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
    )


_CARDS_OF = (
    select(*_CARDS.c)
    .where(_CARDS.c.escalation_id == bindparam("p_escalation_id"))
    .order_by(_CARDS.c.id)
)
_ESCALATION = select(*_ESCALATIONS.c).where(_ESCALATIONS.c.id == bindparam("p_escalation_id"))


def cards_of(session: Session, escalation_id: str) -> list[CardRecord]:
    rows = session.connection().execute(_CARDS_OF, {"p_escalation_id": escalation_id})
    return [_card(row) for row in rows]


def _complete(session: Session, row: Row[Any] | None) -> EscalationRecord | None:
    if row is None:
        return None
    return record_of(row, cards_of(session, row.id), outbox.page_state(session, row.id))


def find(session: Session, escalation_id: str) -> EscalationRecord | None:
    """The escalation with its cards and paging state."""
    row = session.connection().execute(_ESCALATION, {"p_escalation_id": escalation_id}).first()
    return _complete(session, row)


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


def insert(session: Session, new: NewEscalation) -> bool:
    """Insert it with its first card (and its page, when its tier pages) unless the id
    exists; False when another writer got there first."""
    row = EscalationRow(
        id=new.id,
        task_id=new.task_id,
        agent=new.agent,
        task_type=new.task_type,
        kind=new.kind,
        severity=new.severity,
        confidence=new.confidence,
        reason=new.reason,
        payload=new.payload,
        state="open",
        tier=new.tier,
        tier_entered_at=new.at,
        created_at=new.at,
        policy_version=new.policy_version,
        next_action_at=new.next_action_at,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    add_cards(session, [NewCard(new.id, new.tier, new.channel)], new.at)
    if new.page:
        owe_pages(session, [new.id], new.at)
    return True


def add_cards(session: Session, cards: Sequence[NewCard], at: datetime) -> None:
    """New cards, owed to the chat at once."""
    if not cards:
        return
    rows = session.connection().execute(
        _CARDS.insert().returning(_CARDS.c.id, sort_by_parameter_order=True),
        [
            {
                "escalation_id": card.escalation_id,
                "tier": card.tier,
                "channel": card.channel,
                "superseded": False,
                "created_at": at,
            }
            for card in cards
        ],
    )
    outbox.add(
        session,
        [
            NewItem(Topic.CARD, str(card_id), card.escalation_id, CARD_POST)
            for card_id, card in zip(rows.scalars(), cards, strict=True)
        ],
        at,
    )


def owe_pages(session: Session, escalation_ids: Sequence[str], at: datetime) -> None:
    """Each escalation reached a paging tier: PagerDuty is owed its trigger."""
    outbox.add(session, [NewItem(Topic.PAGE, i, i, "trigger") for i in escalation_ids], at)


def supersede_cards(session: Session, escalation_ids: Sequence[str]) -> None:
    if escalation_ids:
        session.connection().execute(
            update(_CARDS)
            .where(_CARDS.c.escalation_id.in_(list(escalation_ids)), _CARDS.c.superseded.is_(False))
            .values(superseded=True)
        )


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


def card_posted(session: Session, card_id: int, ts: str, at: datetime) -> None:
    session.connection().execute(
        update(_CARDS).where(_CARDS.c.id == card_id).values(ts=ts, posted_at=at)
    )


def card_permalink(session: Session, card_id: int, permalink: str) -> None:
    session.connection().execute(
        update(_CARDS).where(_CARDS.c.id == card_id).values(permalink=permalink)
    )


def card_is_posted(session: Session, card_id: int) -> bool:
    ts = (
        session.connection()
        .execute(select(_CARDS.c.ts).where(_CARDS.c.id == card_id))
        .scalar_one_or_none()
    )
    return ts is not None


# ---------------------------------------------------------------- the sweep


def claim_due(
    session: Session, now: datetime, limit: int, owner: str, lease: timedelta
) -> list[EscalationRecord]:
    """Escalations whose tier time is up, claimed so that no other sweep takes them:
    FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite, a conditional UPDATE taking a lease.
    Each comes with its paging state, not its cards."""
    connection = session.connection()
    # Only open escalations carry a next_action_at (acknowledging, deciding and expiring
    # clear it), so the indexed column alone finds the due ones. A `state` condition
    # here would tempt the planner into the state index: 100,000 open rows, then a sort.
    due = (_ESCALATIONS.c.next_action_at <= now,)
    if connection.dialect.name == "postgresql":
        query = (
            select(*_ESCALATIONS.c)
            .where(*due)
            .order_by(_ESCALATIONS.c.next_action_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(connection.execute(query))
    else:
        free = (_ESCALATIONS.c.lease_until.is_(None)) | (_ESCALATIONS.c.lease_until < now)
        ids = (
            select(_ESCALATIONS.c.id)
            .where(*due, free)
            .order_by(_ESCALATIONS.c.next_action_at)
            .limit(limit)
            .scalar_subquery()
        )
        claim = (
            update(_ESCALATIONS)
            .where(_ESCALATIONS.c.id.in_(ids), free)
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(*_ESCALATIONS.c)
        )
        rows = list(connection.execute(claim))
    pages = outbox.page_states(session, [row.id for row in rows])
    return [record_of(row, page=pages.get(row.id)) for row in rows]


_CLIMB = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"))
    .values(
        tier=bindparam("p_tier"),
        tier_entered_at=bindparam("p_at"),
        next_action_at=bindparam("p_next"),
        lease_owner=None,
        lease_until=None,
    )
)
_EXPIRE = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"), _ESCALATIONS.c.state == "open")
    .values(
        state="expired",
        decided_by="policy",
        decided_at=bindparam("p_at"),
        next_action_at=None,
        lease_owner=None,
        lease_until=None,
    )
)
_STOP = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"))
    .values(next_action_at=None, lease_owner=None, lease_until=None)
)


def climb(session: Session, climbs: Sequence[Climb], at: datetime) -> None:
    """Move each escalation to its next tier (its new cards are added apart)."""
    if climbs:
        session.connection().execute(
            _CLIMB,
            [
                {"p_id": c.escalation_id, "p_tier": c.tier, "p_at": at, "p_next": c.next_action_at}
                for c in climbs
            ],
        )


def expire(session: Session, escalation_ids: Sequence[str], at: datetime) -> None:
    """Expire each open escalation; those that paged owe PagerDuty the resolve."""
    if escalation_ids:
        session.connection().execute(_EXPIRE, [{"p_id": i, "p_at": at} for i in escalation_ids])
        outbox.want(session, Topic.PAGE, escalation_ids, "resolve", at)


def stop_clock(session: Session, escalation_ids: Sequence[str]) -> None:
    if escalation_ids:
        session.connection().execute(_STOP, [{"p_id": i} for i in escalation_ids])
