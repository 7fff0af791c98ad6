"""Kills and pauses in the store: the desired state that Redis projects for agents."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, literal_column, select, true, update
from sqlalchemy.orm import Session

from bot.db import audit, audit_head
from bot.db.engine import upsert
from bot.db.models import ControlRow
from bot.records import AuditRecord, ControlRecord

_CONTROLS = ControlRow.__table__
_ACTIVATE: dict[str, Any] = {}

_CURRENT = select(*_CONTROLS.c).where(
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


def record_of(row: Row[Any] | ControlRow) -> ControlRecord:
    return ControlRecord(
        kind=row.kind,
        target=row.target,
        reason=row.reason,
        set_by=row.set_by,
        set_at=row.set_at,
        escalation_id=row.escalation_id,
        revive_requested_by=row.revive_requested_by,
        revive_requested_at=row.revive_requested_at,
        active=bool(row.active),
    )


def _optional(row: Row[Any] | None) -> ControlRecord | None:
    return record_of(row) if row is not None else None


def _activate_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … WHERE NOT active RETURNING: one round trip, and
    no row back when the control already was active."""
    if dialect not in _ACTIVATE:
        insert = upsert(dialect, _CONTROLS).values(
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


def activate(
    session: Session,
    *,
    kind: str,
    target: str,
    reason: str,
    by: str,
    at: datetime,
    escalation_id: str | None,
) -> ControlRecord | None:
    """Make the control active in one statement; None when it already was."""
    connection = session.connection()
    params = {
        "p_kind": kind,
        "p_target": target,
        "p_reason": reason,
        "p_set_by": by,
        "p_set_at": at,
        "p_escalation_id": escalation_id,
    }
    return _optional(
        connection.execute(_activate_statement(connection.dialect.name), params).first()
    )


def activate_audited(
    session: Session,
    *,
    kind: str,
    target: str,
    reason: str,
    by: str,
    at: datetime,
    escalation_id: str | None,
    entry: audit.Entry,
) -> tuple[ControlRecord, AuditRecord] | None:
    """`activate` and the activation's audit row (`entry`); None, and nothing written,
    when the control already was active.

    On PostgreSQL one statement writes both when this engine's guess of the audit head
    holds (bot.db.audit_head); otherwise the row is appended under the head's lock. The
    control row is locked before the head, as in every other action.
    """
    connection = session.connection()
    guessed = audit_head.guess(connection) if connection.dialect.name == "postgresql" else None
    if guessed is None:
        control = activate(
            session,
            kind=kind,
            target=target,
            reason=reason,
            by=by,
            at=at,
            escalation_id=escalation_id,
        )
        return None if control is None else (control, audit.append_many(session, [entry])[0])
    [record] = audit.link([entry], *guessed)
    params = {
        "p_kind": kind,
        "p_target": target,
        "p_reason": reason,
        "p_set_by": by,
        "p_set_at": at,
        "p_escalation_id": escalation_id,
        **audit_head.params(record, guessed),
    }
    row = connection.execute(_activate_and_append(), params).first()
    if row is None:
        return None
    control = record_of(row)
    if row.audit_head_seq is None:  # another writer moved the head: link under its lock
        return control, audit.append_many(session, [entry], guess=False)[0]
    audit_head.remember(connection, record)
    return control, record


@cache
def _activate_and_append() -> Select[Any]:
    """The control activated, then (only if it was, and the guessed head holds) the head
    moved and the audit row inserted: one statement of data-modifying CTEs."""
    activated = _activate_statement("postgresql").cte("activated")
    moved = (
        audit_head.move_if_guessed()
        .where(select(literal_column("1")).select_from(activated).exists())
        .returning(audit_head.HEAD.c.seq)
        .cte("moved_head")
    )
    logged = audit_head.insert_after(moved).cte("logged")
    return (
        select(*activated.c, moved.c.seq.label("audit_head_seq"))
        .select_from(activated.outerjoin(moved, true()))
        .add_cte(logged)
    )


def lift(
    session: Session, *, kind: str, target: str, by: str, at: datetime
) -> ControlRecord | None:
    """Make the control inactive; None when it was not active."""
    params = {"p_kind": kind, "p_target": target, "p_lifted_by": by, "p_lifted_at": at}
    return _optional(session.connection().execute(_LIFT, params).first())


def current(session: Session, kind: str, target: str) -> ControlRecord | None:
    """The control as stored, active or not."""
    row = session.connection().execute(_CURRENT, {"p_kind": kind, "p_target": target}).first()
    return _optional(row)


def lock(session: Session, kind: str, target: str) -> ControlRecord | None:
    """The control, locked until the transaction ends (two admins confirming at once)."""
    row = (
        session.connection()
        .execute(
            select(*_CONTROLS.c)
            .where(_CONTROLS.c.kind == kind, _CONTROLS.c.target == target)
            .with_for_update()
        )
        .first()
    )
    return _optional(row)


def request_revive(session: Session, kind: str, target: str, by: str, at: datetime) -> None:
    session.connection().execute(
        update(_CONTROLS)
        .where(_CONTROLS.c.kind == kind, _CONTROLS.c.target == target)
        .values(revive_requested_by=by, revive_requested_at=at)
    )


def is_active(session: Session, kind: str, target: str) -> bool:
    control = current(session, kind, target)
    return control is not None and control.active


def active(session: Session) -> list[ControlRecord]:
    rows = session.connection().execute(
        select(*_CONTROLS.c)
        .where(_CONTROLS.c.active.is_(True))
        .order_by(_CONTROLS.c.kind, _CONTROLS.c.target)
    )
    return [record_of(row) for row in rows]


def for_targets(session: Session, targets: list[str]) -> dict[str, ControlRecord]:
    """Every control (active or not) of these targets, by `kind:target`."""
    rows = session.connection().execute(select(*_CONTROLS.c).where(_CONTROLS.c.target.in_(targets)))
    return {f"{row.kind}:{row.target}": record_of(row) for row in rows}
