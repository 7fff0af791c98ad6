"""Digests in the store: one message standing for many low and medium cards of a channel.

A card posted in a digest keeps `ts` unset (its message is the digest's) and points at the
digest; it counts as posted from the digest's `posted_at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db.escalations import record_of
from bot.db.models import CardRow, DigestRow, EscalationRow
from bot.records import DigestRecord

_DIGESTS = DigestRow.__table__
_CARDS = CardRow.__table__
_ESCALATIONS = EscalationRow.__table__


def record(
    session: Session,
    channel: str,
    ts: str,
    at: datetime,
    card_ids: Sequence[int],
    permalink: str | None,
) -> int:
    """The digest posted as `ts`, holding the cards not posted meanwhile; its id."""
    connection = session.connection()
    digest_id: int = connection.execute(
        _DIGESTS.insert()
        .values(channel=channel, ts=ts, posted_at=at, created_at=at)
        .returning(_DIGESTS.c.id)
    ).scalar_one()
    if card_ids:
        connection.execute(
            update(_CARDS)
            .where(
                _CARDS.c.id.in_(list(card_ids)),
                _CARDS.c.ts.is_(None),
                _CARDS.c.digest_id.is_(None),
            )
            .values(digest_id=digest_id, posted_at=at, permalink=permalink)
        )
    return digest_id


def find(session: Session, digest_id: int) -> DigestRecord | None:
    connection = session.connection()
    row = connection.execute(select(*_DIGESTS.c).where(_DIGESTS.c.id == digest_id)).first()
    if row is None:
        return None
    members: list[Any] = list(
        connection.execute(
            select(*_ESCALATIONS.c, _CARDS.c.tier.label("card_tier"))
            .join(_CARDS, _CARDS.c.escalation_id == _ESCALATIONS.c.id)
            .where(_CARDS.c.digest_id == digest_id)
            .order_by(_CARDS.c.id)
        )
    )
    return DigestRecord(
        id=row.id,
        channel=row.channel,
        ts=row.ts,
        posted_at=row.posted_at,
        tier=members[0].card_tier if members else None,
        items=tuple(record_of(member) for member in members),
    )


def ts_of(session: Session, digest_id: int) -> str | None:
    return (
        session.connection()
        .execute(select(_DIGESTS.c.ts).where(_DIGESTS.c.id == digest_id))
        .scalar_one_or_none()
    )
