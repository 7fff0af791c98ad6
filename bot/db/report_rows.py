"""What `escbot report` reads from the store over its window: escalations opened since
(by the indexed `created_at`), the recovery rows of the audit log (by its indexed `at`),
and the reviews created since. Plain typed rows, only the columns the figures need."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import AuditRow, EscalationRow, ReviewRow

_ESCALATIONS = EscalationRow.__table__
_AUDIT = AuditRow.__table__
_REVIEWS = ReviewRow.__table__
RECOVERY_ACTIONS = ("pause", "resume", "restart", "abandon")
_BATCH = 5_000


@dataclass(frozen=True)
class EscalationFacts:
    id: str
    task_id: str
    agent: str
    task_type: str | None
    kind: str
    severity: str
    confidence: float | None
    state: str
    created_at: datetime
    acknowledged_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_rule: str | None
    edited: bool


@dataclass(frozen=True)
class RecoveryFacts:
    """A pause, or what ended one (resume, restart, abandon), of a task or an agent."""

    action: str
    target: str
    at: datetime


@dataclass(frozen=True)
class ReviewFacts:
    agent: str
    task_type: str | None
    verdict: str | None


def escalations_since(session: Session, since: datetime) -> list[EscalationFacts]:
    e = _ESCALATIONS.c
    query = select(
        e.id,
        e.task_id,
        e.agent,
        e.task_type,
        e.kind,
        e.severity,
        e.confidence,
        e.state,
        e.created_at,
        e.acknowledged_at,
        e.decided_at,
        e.decided_by,
        e.decision_rule,
        e.edited_by,
    ).where(e.created_at >= since)
    result = session.connection().execution_options(yield_per=_BATCH).execute(query)
    return [_facts(row) for row in result]


def _facts(row: Sequence[Any]) -> EscalationFacts:
    names = [f.name for f in fields(EscalationFacts)]
    values = dict(zip(names, row, strict=True))
    values["edited"] = values["edited"] is not None  # the column read is `edited_by`
    return EscalationFacts(**values)


def recovery_since(session: Session, since: datetime) -> list[RecoveryFacts]:
    a = _AUDIT.c
    query = (
        select(a.action, a.task_id, a.at)
        .where(a.at >= since, a.action.in_(RECOVERY_ACTIONS), a.task_id.is_not(None))
        .order_by(a.seq)
    )
    return [RecoveryFacts(row[0], row[1], row[2]) for row in session.connection().execute(query)]


def reviews_since(session: Session, since: datetime) -> list[ReviewFacts]:
    r = _REVIEWS.c
    query = select(r.agent, r.task_type, r.verdict).where(r.created_at >= since)
    return [ReviewFacts(*row) for row in session.connection().execute(query)]


def tasks_of(session: Session, task_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Task id -> (agent, task type) as its escalations name them (any of them)."""
    wanted: Sequence[str] = sorted(set(task_ids))
    found: dict[str, tuple[str, str | None]] = {}
    e = _ESCALATIONS.c
    for start in range(0, len(wanted), 500):
        chunk = list(wanted[start : start + 500])
        query = select(e.task_id, e.agent, e.task_type).where(e.task_id.in_(chunk))
        for task_id, agent, task_type in session.connection().execute(query):
            found.setdefault(task_id, (agent, task_type))
    return found
