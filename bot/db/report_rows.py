"""What `escbot report` reads from the store over its window: escalations opened since
(by the indexed `created_at`), the recovery rows of the audit log (by its indexed `at`),
and the reviews created since. Plain typed rows, only the columns the figures need."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.models import AuditRow, EscalationRow, ReviewRow

_ESCALATIONS = EscalationRow.__table__
_AUDIT = AuditRow.__table__
_REVIEWS = ReviewRow.__table__
RECOVERY_ACTIONS = ("pause", "resume", "restart", "abandon")


@dataclass(frozen=True, slots=True)
class EscalationFacts:
    """One escalation as the report needs it: its times already as seconds from its
    opening (computed by the database, to the millisecond) and the day it was opened."""

    task_id: str
    agent: str
    task_type: str | None
    confidence: float | None
    state: str
    day: str  # YYYY-MM-DD, UTC
    ack_seconds: float | None
    decision_seconds: float | None
    decided_by: str | None
    policy_rule: bool  # the policy decided it at intake, by a rule
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


def _seconds_since_opened(column: Any, dialect: str) -> Any:
    """`column - created_at` in seconds, in the database: 100,000 rows need not become
    datetimes in Python to be subtracted."""
    opened = _ESCALATIONS.c.created_at
    if dialect == "sqlite":  # stored as naive UTC text
        return func.round((func.julianday(column) - func.julianday(opened)) * 86400.0, 3)
    return func.extract("epoch", column - opened)


def _day(dialect: str) -> Any:
    opened = _ESCALATIONS.c.created_at
    if dialect == "sqlite":
        return func.substr(opened, 1, 10)
    return func.to_char(func.timezone("UTC", opened), "YYYY-MM-DD")


def escalations_since(session: Session, since: datetime) -> list[EscalationFacts]:
    e = _ESCALATIONS.c
    dialect = session.get_bind().dialect.name
    query = select(
        e.task_id,
        e.agent,
        e.task_type,
        e.confidence,
        e.state,
        _day(dialect),
        _seconds_since_opened(e.acknowledged_at, dialect),
        _seconds_since_opened(e.decided_at, dialect),
        e.decided_by,
        e.decision_rule.is_not(None),
        e.edited_by.is_not(None),
    ).where(e.created_at >= since)
    result = session.connection().execute(query).all()
    return [
        EscalationFacts(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            None if row[6] is None else float(row[6]),
            None if row[7] is None else float(row[7]),
            row[8],
            bool(row[9]),
            bool(row[10]),
        )
        for row in result
    ]


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
