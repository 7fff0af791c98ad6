"""The outbox: what is owed to the world outside (cards to post, PagerDuty events), kept in
the database until it lands. One mechanism for every topic: claim with a lease, record
that it landed, or back off, with jitter, so that replicas never retry in lock-step.

A row is one thing (`topic`, `key`). `wanted` is what it calls for now and `sent` what
last landed; it is due while `next_attempt_at` is set and has passed. A claim takes the
due rows in one statement (with SKIP LOCKED on PostgreSQL; SQLite has one writer), so two
senders never hold the same row; a sender that dies loses its rows only for the lease.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Row, case, select, update
from sqlalchemy.orm import Session

from bot.db.models import OutboxRow
from bot.records import PageState

_OUTBOX = OutboxRow.__table__
MAX_BACKOFF = timedelta(seconds=60)


class Topic(StrEnum):
    CARD = "card"
    PAGE = "page"
    REVIEW = "review"  # a sampled review's card (key: the review's id)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    topic: str
    key: str
    escalation_id: str | None
    wanted: str | None
    sent: str | None
    attempts: int
    last_error: str | None
    rank: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class NewItem:
    topic: Topic
    key: str
    escalation_id: str | None
    wanted: str
    rank: int = 0  # claimed lowest first (a card's severity)


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """2, 4, 8 … 60 s after the attempts so far, each drawn from its upper half
    ("equal jitter"): never sooner than half the step, never in step with a replica."""
    step = min(MAX_BACKOFF, timedelta(seconds=2 ** min(max(attempts, 1), 6)))
    return step * (0.5 + (rng or random).random() / 2)


def _item(row: Row[tuple[object, ...]]) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        topic=row.topic,
        key=row.key,
        escalation_id=row.escalation_id,
        wanted=row.wanted,
        sent=row.sent,
        attempts=row.attempts or 0,
        last_error=row.last_error,
        rank=row.rank or 0,
        created_at=row.created_at,
    )


def add(session: Session, items: Sequence[NewItem], at: datetime) -> None:
    """Owe each item now."""
    if items:
        session.connection().execute(
            _OUTBOX.insert(),
            [
                {
                    "topic": item.topic.value,
                    "key": item.key,
                    "escalation_id": item.escalation_id,
                    "wanted": item.wanted,
                    "sent": None,
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                    "rank": item.rank,
                }
                for item in items
            ],
        )


def want(session: Session, topic: Topic, keys: Sequence[str], wanted: str, at: datetime) -> None:
    """Owe `wanted` now for each existing row of `keys` (rows that do not exist stay so:
    an escalation that never paged owes PagerDuty no acknowledge)."""
    if keys:
        session.connection().execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.topic == topic.value, _OUTBOX.c.key.in_(list(keys)))
            .values(wanted=wanted, next_attempt_at=at, attempts=0)
        )


def claim(
    session: Session,
    topic: Topic,
    *,
    now: datetime,
    lease: timedelta,
    owner: str,
    limit: int,
) -> list[OutboxItem]:
    """The due rows of `topic`, lowest rank first (a card's severity), then oldest,
    leased to `owner` until now + lease."""
    connection = session.connection()
    free = (_OUTBOX.c.claimed_until.is_(None)) | (_OUTBOX.c.claimed_until < now)
    due = select(_OUTBOX.c.id).where(
        _OUTBOX.c.topic == topic.value, _OUTBOX.c.next_attempt_at <= now, free
    )
    due = due.order_by(_OUTBOX.c.rank, _OUTBOX.c.created_at, _OUTBOX.c.id).limit(limit)
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = connection.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(due.scalar_subquery()), free)
        .values(claimed_until=now + lease, claimed_by=owner)
        .returning(*_OUTBOX.c)
    )
    return sorted((_item(row) for row in rows), key=lambda item: (item.rank, item.id))


def renew(session: Session, ids: Sequence[int], *, owner: str, until: datetime) -> None:
    """Extend the lease of rows still being worked on."""
    if ids:
        session.connection().execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(list(ids)), _OUTBOX.c.claimed_by == owner)
            .values(claimed_until=until)
        )


def sent(session: Session, item_id: int, action: str, *, release: bool = True) -> None:
    """`action` landed. Nothing is owed any more unless something else was wanted since;
    without `release` the claim is kept, for the sender's next event of the same row."""
    claim_values = {"claimed_until": None, "claimed_by": None} if release else {}
    session.connection().execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == item_id)
        .values(
            sent=action,
            last_error=None,
            attempts=0,
            next_attempt_at=case(
                (_OUTBOX.c.wanted == action, None), else_=_OUTBOX.c.next_attempt_at
            ),
            **claim_values,
        )
    )


def failed(
    session: Session, item_id: int, error: str, now: datetime, *, rng: random.Random | None = None
) -> tuple[int, timedelta]:
    """An attempt failed: count it, release the claim, try again after a backoff.
    Returns (attempts so far, delay)."""
    connection = session.connection()
    attempts = connection.execute(
        select(_OUTBOX.c.attempts).where(_OUTBOX.c.id == item_id)
    ).scalar_one_or_none()
    if attempts is None:
        return 0, timedelta(0)
    attempts += 1
    delay = backoff(attempts, rng=rng)
    connection.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == item_id)
        .values(
            attempts=attempts,
            last_error=error[:2000],
            claimed_until=None,
            claimed_by=None,
            next_attempt_at=now + delay,
        )
    )
    return attempts, delay


def release(session: Session, ids: Sequence[int], owner: str) -> None:
    """Give back rows claimed but not attempted (their channel is paced): due as before."""
    if ids:
        session.connection().execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(list(ids)), _OUTBOX.c.claimed_by == owner)
            .values(claimed_until=None, claimed_by=None)
        )


def settle(session: Session, topic: Topic, key: str) -> None:
    """Owe nothing more for this row (the thing it would deliver no longer matters)."""
    session.connection().execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.topic == topic.value, _OUTBOX.c.key == key)
        .values(next_attempt_at=None, claimed_until=None, claimed_by=None)
    )


def has_due(session: Session, topic: Topic, now: datetime) -> bool:
    """Whether a row of `topic` is due now and free to claim (a read: no lock taken)."""
    free = (_OUTBOX.c.claimed_until.is_(None)) | (_OUTBOX.c.claimed_until < now)
    due = select(_OUTBOX.c.id).where(
        _OUTBOX.c.topic == topic.value, _OUTBOX.c.next_attempt_at <= now, free
    )
    return session.connection().execute(due.limit(1)).first() is not None


def owed_count(session: Session, topic: Topic) -> int:
    from sqlalchemy import func

    query = select(func.count()).where(
        _OUTBOX.c.topic == topic.value, _OUTBOX.c.next_attempt_at.is_not(None)
    )
    return session.connection().execute(query).scalar_one()


_PAGE_STATE = select(
    _OUTBOX.c.wanted, _OUTBOX.c.sent, _OUTBOX.c.last_error, _OUTBOX.c.attempts
).where(_OUTBOX.c.topic == Topic.PAGE.value)


def page_state(session: Session, escalation_id: str) -> PageState:
    row = session.connection().execute(_PAGE_STATE.where(_OUTBOX.c.key == escalation_id)).first()
    if row is None:
        return PageState()
    return PageState(wanted=row.wanted, sent=row.sent, error=row.last_error, attempts=row.attempts)


def page_states(session: Session, escalation_ids: Sequence[str]) -> dict[str, PageState]:
    if not escalation_ids:
        return {}
    rows = session.connection().execute(
        select(
            _OUTBOX.c.key,
            _OUTBOX.c.wanted,
            _OUTBOX.c.sent,
            _OUTBOX.c.last_error,
            _OUTBOX.c.attempts,
        ).where(_OUTBOX.c.topic == Topic.PAGE.value, _OUTBOX.c.key.in_(list(escalation_ids)))
    )
    return {
        row.key: PageState(
            wanted=row.wanted, sent=row.sent, error=row.last_error, attempts=row.attempts
        )
        for row in rows
    }
