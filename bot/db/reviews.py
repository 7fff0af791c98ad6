"""Sampled reviews in the store: work a person looks at after the fact, its card (owed
through the outbox) and its verdict, given once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from bot.db import outbox
from bot.db.engine import upsert
from bot.db.models import ReviewRow
from bot.db.outbox import NewItem, Topic
from bot.records import ReviewItem

_REVIEWS = ReviewRow.__table__
CARD_POST = "post"


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
        verdict_by=row.verdict_by,
        verdict_at=row.verdict_at,
        verdict_note=row.verdict_note,
        paused=row.verdict_paused,
        channel=row.channel,
        ts=row.ts,
    )


def add(session: Session, review: NewReview, at: datetime) -> int | None:
    """Store it once and owe its card: the same subject sampled again (a retry) is one
    review. The new review's id, or None when it was there already."""
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
    review_id: int | None = connection.execute(statement).scalar_one_or_none()
    if review_id is not None:
        item = NewItem(Topic.REVIEW, str(review_id), review.escalation_id, CARD_POST)
        outbox.add(session, [item], at)
    return review_id


_FIND = select(*_REVIEWS.c).where(_REVIEWS.c.id == bindparam("p_id"))


def find(session: Session, review_id: int) -> ReviewItem | None:
    row = session.connection().execute(_FIND, {"p_id": review_id}).first()
    return _item(row) if row is not None else None


_VERDICT = (
    update(_REVIEWS)
    .where(_REVIEWS.c.id == bindparam("p_id"), _REVIEWS.c.verdict.is_(None))
    .values(
        verdict=bindparam("p_verdict"),
        verdict_by=bindparam("p_by"),
        verdict_at=bindparam("p_at"),
        verdict_note=bindparam("p_note"),
        verdict_paused=bindparam("p_paused"),
    )
    .returning(*_REVIEWS.c)
)


def give_verdict(
    session: Session,
    review_id: int,
    *,
    verdict: str,
    by: str,
    at: datetime,
    note: str | None,
    paused: str | None,
) -> ReviewItem | None:
    """Compare-and-set: the review with its verdict for exactly one caller; None for
    every other (a second click, a replica, a retry), or when there is no such review.
    `paused`: what the verdict pauses (a flag's task or agent), for the card."""
    params = {
        "p_id": review_id,
        "p_verdict": verdict,
        "p_by": by,
        "p_at": at,
        "p_note": note,
        "p_paused": paused,
    }
    row = session.connection().execute(_VERDICT, params).first()
    return _item(row) if row is not None else None


def card_posted(session: Session, review_id: int, channel: str, ts: str, at: datetime) -> None:
    session.connection().execute(
        update(_REVIEWS)
        .where(_REVIEWS.c.id == review_id)
        .values(channel=channel, ts=ts, posted_at=at)
    )


def waiting(session: Session, limit: int = 20) -> list[ReviewItem]:
    """Reviews nobody has given a verdict on yet, oldest first."""
    rows = session.connection().execute(
        select(*_REVIEWS.c).where(_REVIEWS.c.verdict.is_(None)).order_by(_REVIEWS.c.id).limit(limit)
    )
    return [_item(row) for row in rows]
