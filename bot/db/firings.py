"""Trigger firings in the store: at most one active per trigger and subject (a unique
partial index), so a trigger fires once however many replicas saw its window hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.orm import Session

from bot.control import Effect
from bot.db.engine import upsert
from bot.db.models import TriggerFiring

_FIRINGS = TriggerFiring.__table__


@dataclass(frozen=True)
class NewFiring:
    trigger: str
    subject: str  # the task id, or `agent:{agent}`
    task_id: str
    agent: str
    then: tuple[str, ...]
    value: float
    detail: dict[str, Any]


@dataclass(frozen=True)
class Released:
    """A firing released: its trigger may fire again for its subject."""

    trigger: str
    subject: str


def release_effects(released: Sequence[Released]) -> list[Effect]:
    """The trigger's keys reset: it may fire again, from an empty window."""
    return [Effect("trigger", f"{r.trigger}|{r.subject}", "delete") for r in released]


def _released(rows: Sequence[Row[Any]]) -> list[Released]:
    return [Released(row.trigger, row.subject) for row in rows]


def start(session: Session, firing: NewFiring, at: datetime) -> int | None:
    """Record the firing unless one is active for that trigger and subject; its id, or
    None when the trigger has fired already (another replica, an earlier signal)."""
    connection = session.connection()
    statement = (
        upsert(connection.dialect.name, _FIRINGS)
        .values(
            trigger=firing.trigger,
            subject=firing.subject,
            task_id=firing.task_id,
            agent=firing.agent,
            then=",".join(firing.then),
            value=firing.value,
            detail=firing.detail,
            fired_at=at,
            active=True,
        )
        .on_conflict_do_nothing(
            index_elements=[_FIRINGS.c.trigger, _FIRINGS.c.subject],
            index_where=text("active"),  # exactly the unique index's own condition
        )
        .returning(_FIRINGS.c.id)
    )
    found = connection.execute(statement).scalar_one_or_none()
    return int(found) if found is not None else None


def note_escalation(session: Session, firing_id: int, escalation_id: str) -> None:
    session.connection().execute(
        update(_FIRINGS).where(_FIRINGS.c.id == firing_id).values(escalation_id=escalation_id)
    )


def is_active(session: Session, trigger: str, subject: str) -> bool:
    found = session.connection().execute(
        select(_FIRINGS.c.id).where(
            _FIRINGS.c.trigger == trigger,
            _FIRINGS.c.subject == subject,
            _FIRINGS.c.active.is_(True),
        )
    )
    return found.first() is not None


def release_lifted(
    session: Session, action: str, subject: str, by: str, at: datetime
) -> list[Released]:
    """An operator lifted `action` (pause or kill) of `subject`: the firings that did it
    may fire again."""
    rows = session.connection().execute(
        update(_FIRINGS)
        .where(
            _FIRINGS.c.subject == subject,
            _FIRINGS.c.active.is_(True),
            _FIRINGS.c.then.contains(action),
        )
        .values(active=False, released_at=at, released_by=by)
        .returning(_FIRINGS.c.trigger, _FIRINGS.c.subject)
    )
    return _released(rows.all())


def release_decided(
    session: Session, escalation_ids: Sequence[str], by: str, at: datetime
) -> list[Released]:
    """Escalations decided (or expired): the firings whose only action was to escalate
    may fire again."""
    if not escalation_ids:
        return []
    rows = session.connection().execute(
        update(_FIRINGS)
        .where(
            _FIRINGS.c.escalation_id.in_(list(escalation_ids)),
            _FIRINGS.c.active.is_(True),
            _FIRINGS.c.then == "escalate",
        )
        .values(active=False, released_at=at, released_by=by)
        .returning(_FIRINGS.c.trigger, _FIRINGS.c.subject)
    )
    return _released(rows.all())
