"""Cards in the store: where each of an escalation's cards is, and what is owed to post."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from bot.db import outbox
from bot.db.models import CardRow
from bot.db.outbox import NewItem, Topic
from bot.records import CardRecord

_CARDS = CardRow.__table__
CARD_POST = "post"


# The outbox's rank of each severity: the most severe card goes out first.
RANKS = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def rank(severity: str | None) -> int:
    return RANKS.get(severity or "medium", 2)


@dataclass(frozen=True)
class NewCard:
    escalation_id: str
    tier: str
    channel: str
    severity: str | None = None


def card_record(row: Row[Any]) -> CardRecord:
    return CardRecord(
        tier=row.tier,
        channel=row.channel,
        ts=row.ts,
        permalink=row.permalink,
        superseded=row.superseded,
        posted_at=row.posted_at,
        id=row.id,
        digest_id=row.digest_id,
    )


_CARDS_OF = (
    select(*_CARDS.c)
    .where(_CARDS.c.escalation_id == bindparam("p_escalation_id"))
    .order_by(_CARDS.c.id)
)


def cards_of(session: Session, escalation_id: str) -> list[CardRecord]:
    rows = session.connection().execute(_CARDS_OF, {"p_escalation_id": escalation_id})
    return [card_record(row) for row in rows]


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
            NewItem(Topic.CARD, str(card_id), card.escalation_id, CARD_POST, rank(card.severity))
            for card_id, card in zip(rows.scalars(), cards, strict=True)
        ],
        at,
    )


def supersede_cards(session: Session, escalation_ids: Sequence[str]) -> None:
    if escalation_ids:
        session.connection().execute(
            update(_CARDS)
            .where(_CARDS.c.escalation_id.in_(list(escalation_ids)), _CARDS.c.superseded.is_(False))
            .values(superseded=True)
        )


def card_posted(
    session: Session, card_id: int, ts: str, at: datetime, permalink: str | None = None
) -> None:
    values: dict[str, object] = {"ts": ts, "posted_at": at}
    if permalink is not None:
        values["permalink"] = permalink
    session.connection().execute(update(_CARDS).where(_CARDS.c.id == card_id).values(**values))


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
