"""Sampled reviews in the store: work a person looks at after the fact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from bot.db.engine import upsert
from bot.db.models import ReviewRow
from bot.records import ReviewItem

_REVIEWS = ReviewRow.__table__


@dataclass(frozen=True)
class NewReview:
    subject: str  # "decision" (a request the policy decided alone) or "task" (finished work)
    subject_id: str  # the escalation id, or the task id
    task_id: str
    agent: str
    task_type: str | None
    escalation_id: str | None
    rule: str | None
    rate: float
    summary: str


def _item(row: Row[Any]) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        subject=row.subject,
        subject_id=row.subject_id,
        task_id=row.task_id,
        agent=row.agent,
        task_type=row.task_type,
        escalation_id=row.escalation_id,
        rule=row.rule,
        rate=row.rate,
        summary=row.summary,
        created_at=row.created_at,
        verdict=row.verdict,
    )


def add(session: Session, review: NewReview, at: datetime) -> bool:
    """Store it once: the same subject sampled again (a retry) is one review. True when new."""
    connection = session.connection()
    statement = (
        upsert(connection.dialect.name, _REVIEWS)
        .values(
            subject=review.subject,
            subject_id=review.subject_id,
            task_id=review.task_id,
            agent=review.agent,
            task_type=review.task_type,
            escalation_id=review.escalation_id,
            rule=review.rule,
            rate=review.rate,
            summary=review.summary[:2000],
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=[_REVIEWS.c.subject, _REVIEWS.c.subject_id])
        .returning(_REVIEWS.c.id)
    )
    return connection.execute(statement).first() is not None


def waiting(session: Session, limit: int = 20) -> list[ReviewItem]:
    """Reviews nobody has given a verdict on yet, oldest first."""
    rows = session.connection().execute(
        select(*_REVIEWS.c).where(_REVIEWS.c.verdict.is_(None)).order_by(_REVIEWS.c.id).limit(limit)
    )
    return [_item(row) for row in rows]
