"""Reads and row-level writes of the store, with no business rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db.audit import record_of
from bot.db.models import (
    AuditRow,
    CardRow,
    ControlRow,
    EscalationRow,
    IdempotencyKey,
    PendingEffectRow,
    RejectedEntryRow,
)
from bot.views import (
    OPEN_STATES,
    AuditRecord,
    CardView,
    ControlView,
    EscalationView,
    RejectedEntryView,
)

_ESCALATIONS = EscalationRow.__table__
_CARDS = CardRow.__table__
_CONTROLS = ControlRow.__table__

# The statements on every action's path are built once, with bind parameters: building a
# statement per call costs more than running it.
_CARDS_OF = (
    select(*_CARDS.c)
    .where(_CARDS.c.escalation_id == bindparam("p_escalation_id"))
    .order_by(_CARDS.c.id)
)
_CONTROL = select(*_CONTROLS.c).where(
    _CONTROLS.c.kind == bindparam("p_kind"), _CONTROLS.c.target == bindparam("p_target")
)
_LIFT = (
    _CONTROLS.update()
    .where(
        _CONTROLS.c.kind == bindparam("p_kind"),
        _CONTROLS.c.target == bindparam("p_target"),
        _CONTROLS.c.active.is_(True),
    )
    .values(
        active=False,
        lifted_by=bindparam("p_lifted_by"),
        lifted_at=bindparam("p_lifted_at"),
        revive_requested_by=None,
        revive_requested_at=None,
    )
    .returning(*_CONTROLS.c)
)


def _page_next(action: str) -> dict[str, Any]:
    """Once an escalation has paged, acknowledging or deciding it owes PagerDuty that
    event too; one that never paged owes nothing."""
    paged = _ESCALATIONS.c.page_wanted.is_not(None)
    return {
        "page_wanted": case((paged, action), else_=None),
        "page_next_attempt_at": case((paged, bindparam("at")), else_=None),
        "page_attempts": case((paged, 0), else_=_ESCALATIONS.c.page_attempts),
    }


_ESCALATION = select(*_ESCALATIONS.c).where(_ESCALATIONS.c.id == bindparam("p_escalation_id"))
_ACKNOWLEDGE = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_escalation_id"), _ESCALATIONS.c.state == "open")
    .values(
        state="acknowledged",
        acknowledged_by=bindparam("by"),
        acknowledged_at=bindparam("at"),
        next_action_at=None,
        **_page_next("acknowledge"),
    )
    .returning(*_ESCALATIONS.c)
)
_DECIDE = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_escalation_id"), _ESCALATIONS.c.state.in_(OPEN_STATES))
    .values(
        state=bindparam("outcome"),
        decided_by=bindparam("by"),
        decided_at=bindparam("at"),
        decision_comment=bindparam("comment"),
        decision_instruction=bindparam("instruction"),
        next_action_at=None,
        lease_owner=None,
        lease_until=None,
        **_page_next("resolve"),
    )
    .returning(*_ESCALATIONS.c)
)
_DIALECT_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
_ACTIVATE: dict[str, Any] = {}
_IDEMPOTENT: dict[str, Any] = {}


def claim_idempotency_key(session: Session, key: str, at: datetime) -> bool:
    """True the first time `key` is claimed; False for every repeat (a Slack retry)."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect not in _IDEMPOTENT:
        table = IdempotencyKey.__table__
        _IDEMPOTENT[dialect] = (
            _DIALECT_INSERTS[dialect](table)
            .values(
                key=bindparam("p_key"), created_at=bindparam("p_at", type_=table.c.created_at.type)
            )
            .on_conflict_do_nothing(index_elements=[table.c.key])
            .returning(table.c.key)
        )
    return connection.execute(_IDEMPOTENT[dialect], {"p_key": key, "p_at": at}).first() is not None


def _activate_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … WHERE NOT active RETURNING: one round trip, and
    no row back when the control already was active."""
    if dialect not in _ACTIVATE:
        insert = _DIALECT_INSERTS[dialect](_CONTROLS).values(
            kind=bindparam("p_kind"),
            target=bindparam("p_target"),
            active=True,
            reason=bindparam("p_reason"),
            set_by=bindparam("p_set_by"),
            set_at=bindparam("p_set_at", type_=_CONTROLS.c.set_at.type),
            escalation_id=bindparam("p_escalation_id"),
        )
        excluded = insert.excluded
        _ACTIVATE[dialect] = insert.on_conflict_do_update(
            index_elements=[_CONTROLS.c.kind, _CONTROLS.c.target],
            set_={
                "active": True,
                "reason": excluded.reason,
                "set_by": excluded.set_by,
                "set_at": excluded.set_at,
                "escalation_id": excluded.escalation_id,
                "lifted_by": None,
                "lifted_at": None,
                "revive_requested_by": None,
                "revive_requested_at": None,
            },
            where=_CONTROLS.c.active.is_(False),
        ).returning(*_CONTROLS.c)
    return _ACTIVATE[dialect]


def card_view(row: Any) -> CardView:
    return CardView(
        tier=row.tier,
        channel=row.channel,
        ts=row.ts,
        permalink=row.permalink,
        superseded=row.superseded,
        posted_at=row.posted_at,
    )


def escalation_view(row: Any, cards: Sequence[Any] = ()) -> EscalationView:
    """From an ORM object or a Core row of `escalations` (both read by attribute)."""
    payload = row.payload or {}
    return EscalationView(
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
        cards=tuple(card_view(card) for card in sorted(cards, key=lambda card: card.id)),
        page_wanted=row.page_wanted,
        page_sent=row.page_sent,
        page_error=row.page_error,
        page_attempts=row.page_attempts or 0,
    )


def control_view(row: Any) -> ControlView:
    return ControlView(
        kind=row.kind,
        target=row.target,
        reason=row.reason,
        set_by=row.set_by,
        set_at=row.set_at,
        escalation_id=row.escalation_id,
        revive_requested_by=row.revive_requested_by,
        revive_requested_at=row.revive_requested_at,
    )


def cards_of(session: Session, escalation_id: str) -> list[Any]:
    return list(session.connection().execute(_CARDS_OF, {"p_escalation_id": escalation_id}))


def load_escalation(session: Session, escalation_id: str) -> EscalationView | None:
    row = session.get(EscalationRow, escalation_id, populate_existing=True)
    return escalation_view(row, cards_of(session, escalation_id)) if row else None


def insert_escalation(session: Session, row: EscalationRow, card: CardRow) -> bool:
    """Insert unless the id exists; False when another writer got there first."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    session.add(card)
    session.flush()
    return True


def escalation_row(session: Session, escalation_id: str) -> Any | None:
    return session.connection().execute(_ESCALATION, {"p_escalation_id": escalation_id}).first()


def acknowledge(session: Session, escalation_id: str, by: str, at: datetime) -> Any | None:
    """Compare-and-set open → acknowledged; the changed row, or None if it was not open."""
    params = {"p_escalation_id": escalation_id, "by": by, "at": at}
    return session.connection().execute(_ACKNOWLEDGE, params).first()


def decide(
    session: Session,
    escalation_id: str,
    *,
    outcome: str,
    by: str,
    at: datetime,
    comment: str | None,
    instruction: str | None,
) -> Any | None:
    """Compare-and-set open or acknowledged → `outcome`: exactly one caller gets the row;
    every other (a second click, a replica, a retry) gets None."""
    params = {
        "p_escalation_id": escalation_id,
        "outcome": outcome,
        "by": by,
        "at": at,
        "comment": comment,
        "instruction": instruction,
    }
    return session.connection().execute(_DECIDE, params).first()


def lock_control(session: Session, kind: str, target: str) -> ControlRow | None:
    return session.get(ControlRow, (kind, target), with_for_update=True)


def activate_control(
    session: Session,
    *,
    kind: str,
    target: str,
    reason: str,
    by: str,
    at: datetime,
    escalation_id: str | None,
) -> Any | None:
    """Make the control active in one statement; None when it already was."""
    connection = session.connection()
    statement = _activate_statement(connection.dialect.name)
    params = {
        "p_kind": kind,
        "p_target": target,
        "p_reason": reason,
        "p_set_by": by,
        "p_set_at": at,
        "p_escalation_id": escalation_id,
    }
    return connection.execute(statement, params).first()


def lift_control(session: Session, *, kind: str, target: str, by: str, at: datetime) -> Any | None:
    """Make the control inactive; None when it was not active."""
    params = {"p_kind": kind, "p_target": target, "p_lifted_by": by, "p_lifted_at": at}
    return session.connection().execute(_LIFT, params).first()


def current_control(session: Session, kind: str, target: str) -> Any | None:
    return session.connection().execute(_CONTROL, {"p_kind": kind, "p_target": target}).first()


def active_controls(session: Session, *, lock: bool = False) -> list[ControlRow]:
    query = (
        select(ControlRow)
        .where(ControlRow.active.is_(True))
        .order_by(ControlRow.kind, ControlRow.target)
    )
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query))


def is_active(session: Session, kind: str, target: str) -> bool:
    row = current_control(session, kind, target)
    return row is not None and bool(row.active)


def controls_for(session: Session, task_id: str) -> dict[str, ControlRow]:
    rows = session.scalars(select(ControlRow).where(ControlRow.target.in_([task_id, "all"])))
    return {f"{row.kind}:{row.target}": row for row in rows}


def escalations_for_task(session: Session, task_id: str, limit: int = 20) -> list[EscalationView]:
    rows = session.scalars(
        select(EscalationRow)
        .where(EscalationRow.task_id == task_id)
        .order_by(EscalationRow.created_at.desc())
        .limit(limit)
    )
    return [escalation_view(row) for row in rows]


def open_escalations(session: Session, limit: int = 50) -> list[EscalationView]:
    rows = session.scalars(
        select(EscalationRow)
        .where(EscalationRow.state.in_(OPEN_STATES))
        .order_by(EscalationRow.created_at)
        .limit(limit)
    )
    return [escalation_view(row) for row in rows]


def recent_audit(session: Session, task_id: str, limit: int = 10) -> list[AuditRecord]:
    rows = session.scalars(
        select(AuditRow)
        .where(AuditRow.task_id == task_id)
        .order_by(AuditRow.seq.desc())
        .limit(limit)
    )
    return [record_of(row) for row in rows]


def task_is_known(session: Session, task_id: str) -> bool:
    for column in (EscalationRow.task_id, ControlRow.target, AuditRow.task_id):
        if session.scalar(select(column).where(column == task_id).limit(1)) is not None:
            return True
    return False


def recent_rejected(session: Session, limit: int = 10) -> list[RejectedEntryView]:
    rows = session.scalars(
        select(RejectedEntryRow).order_by(RejectedEntryRow.id.desc()).limit(limit)
    )
    return [
        RejectedEntryView(
            stream_id=row.stream_id, received_at=row.received_at, reason=row.reason, raw=row.raw
        )
        for row in rows
    ]


def pending_effect_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingEffectRow)) or 0


def pending_effects(session: Session, limit: int = 500) -> list[PendingEffectRow]:
    return list(
        session.scalars(
            select(PendingEffectRow).order_by(PendingEffectRow.id).limit(limit).with_for_update()
        )
    )


# ---------------------------------------------------------------- the sweep


def claim_due(
    session: Session, now: datetime, limit: int, owner: str, lease: timedelta
) -> list[Any]:
    """Open escalations whose tier time is up, claimed so that no other sweep takes them:
    FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite, a conditional UPDATE taking a lease."""
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
        return list(connection.execute(query))
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
    return list(connection.execute(claim))


_CLIMB = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"))
    .values(
        tier=bindparam("p_tier"),
        tier_entered_at=bindparam("p_at"),
        next_action_at=bindparam("p_next"),
        lease_owner=None,
        lease_until=None,
        page_wanted=bindparam("p_page_wanted"),
        page_next_attempt_at=bindparam("p_page_next"),
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
        page_wanted=bindparam("p_page_wanted"),
        page_next_attempt_at=bindparam("p_page_next"),
    )
)
_STOP = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"))
    .values(next_action_at=None, lease_owner=None, lease_until=None)
)


def climb(session: Session, changes: list[dict[str, Any]]) -> None:
    if changes:
        session.connection().execute(_CLIMB, changes)


def expire(session: Session, changes: list[dict[str, Any]]) -> None:
    if changes:
        session.connection().execute(_EXPIRE, changes)


def stop_clock(session: Session, ids: list[str]) -> None:
    if ids:
        session.connection().execute(_STOP, [{"p_id": i} for i in ids])


def supersede_cards(session: Session, escalation_ids: list[str]) -> None:
    if escalation_ids:
        session.connection().execute(
            update(_CARDS)
            .where(_CARDS.c.escalation_id.in_(escalation_ids), _CARDS.c.superseded.is_(False))
            .values(superseded=True)
        )


def add_cards(session: Session, cards: list[dict[str, Any]]) -> None:
    if cards:
        session.connection().execute(_CARDS.insert(), cards)


# ---------------------------------------------------------------- paging


def claim_pages(session: Session, now: datetime, limit: int, lease: timedelta) -> list[Any]:
    """Escalations owing PagerDuty an event, claimed for `lease` (a replica skips them)."""
    connection = session.connection()
    owed = (
        _ESCALATIONS.c.page_next_attempt_at <= now,
        (_ESCALATIONS.c.page_claimed_until.is_(None)) | (_ESCALATIONS.c.page_claimed_until < now),
    )
    ids = [
        row.id
        for row in connection.execute(
            select(_ESCALATIONS.c.id)
            .where(*owed)
            .order_by(_ESCALATIONS.c.page_next_attempt_at)
            .limit(limit)
        )
    ]
    claimed = []
    for escalation_id in ids:
        row = connection.execute(
            update(_ESCALATIONS)
            .where(_ESCALATIONS.c.id == escalation_id, *owed)
            .values(page_claimed_until=now + lease)
            .returning(*_ESCALATIONS.c)
        ).first()
        if row is not None:
            claimed.append(row)
    return claimed


def page_sent(session: Session, escalation_id: str, action: str, *, release: bool = True) -> bool:
    """Record that PagerDuty took `action`; done unless another event is owed since.
    Without `release` the claim is kept, for the sender's next event."""
    claim = {"page_claimed_until": None} if release else {}
    result = session.connection().execute(
        update(_ESCALATIONS)
        .where(_ESCALATIONS.c.id == escalation_id)
        .values(
            page_sent=action,
            page_error=None,
            page_attempts=0,
            **claim,
            page_next_attempt_at=case(
                (_ESCALATIONS.c.page_wanted == action, None),
                else_=_ESCALATIONS.c.page_next_attempt_at,
            ),
        )
    )
    return result.rowcount == 1


def page_failed(session: Session, escalation_id: str, error: str, retry_at: datetime) -> int:
    row = (
        session.connection()
        .execute(
            update(_ESCALATIONS)
            .where(_ESCALATIONS.c.id == escalation_id)
            .values(
                page_error=error[:2000],
                page_attempts=_ESCALATIONS.c.page_attempts + 1,
                page_claimed_until=None,
                page_next_attempt_at=retry_at,
            )
            .returning(_ESCALATIONS.c.page_attempts)
        )
        .first()
    )
    return row.page_attempts if row is not None else 0
