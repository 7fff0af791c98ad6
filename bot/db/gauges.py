"""The counts behind the metrics' gauges, read at scrape time: each one an indexed count
(`ix_escalations_open_sla`, `ix_outbox_due`), so a scrape costs the same with a hundred
escalations or a million decided ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot.db import outbox
from bot.db.models import EscalationRow
from bot.db.outbox import Topic
from bot.records import OPEN_STATES

_ESCALATIONS = EscalationRow.__table__


@dataclass(frozen=True)
class OpenGroup:
    """Unacknowledged escalations that share a deadline rule: their severity, ladder and
    the severity's own acknowledgement deadline (None: the ladder's first tier's)."""

    severity: str
    ladder: str | None
    ack_timeout_seconds: int | None
    count: int
    oldest: datetime


def open_escalations(session: Session) -> int:
    """Open escalations: not decided yet (open or acknowledged)."""
    query = select(func.count()).where(_ESCALATIONS.c.state.in_(OPEN_STATES))
    return session.connection().execute(query).scalar_one()


def cards_waiting(session: Session) -> int:
    """Cards owed to the chat and not posted yet."""
    return outbox.owed_count(session, Topic.CARD)


def unacknowledged_groups(session: Session) -> list[OpenGroup]:
    e = _ESCALATIONS.c
    query = (
        select(e.severity, e.ladder, e.ack_timeout_seconds, func.count(), func.min(e.created_at))
        .where(e.state == "open")
        .group_by(e.severity, e.ladder, e.ack_timeout_seconds)
    )
    return [
        OpenGroup(row[0], row[1], row[2], int(row[3]), row[4])
        for row in session.connection().execute(query)
    ]


def unacknowledged_older_than(
    session: Session, groups: list[tuple[OpenGroup, timedelta]], now: datetime
) -> dict[str, int]:
    """Per severity, the unacknowledged escalations older than their group's SLA."""
    e = _ESCALATIONS.c
    counts: dict[str, int] = {}
    late = [(group, sla) for group, sla in groups if group.oldest < now - sla]
    for group, sla in late:
        same_ladder = e.ladder.is_(None) if group.ladder is None else e.ladder == group.ladder
        same_deadline = (
            e.ack_timeout_seconds.is_(None)
            if group.ack_timeout_seconds is None
            else e.ack_timeout_seconds == group.ack_timeout_seconds
        )
        query = select(func.count()).where(
            and_(
                e.state == "open",
                e.severity == group.severity,
                same_ladder,
                same_deadline,
                e.created_at < now - sla,
            )
        )
        found = session.connection().execute(query).scalar_one()
        counts[group.severity] = counts.get(group.severity, 0) + int(found)
    return counts
