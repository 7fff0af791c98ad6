"""The sweep's writes in the store: claim the escalations whose tier time is up, move
them up a tier, expire them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from bot.db import outbox
from bot.db.escalations import record_of
from bot.db.models import EscalationRow
from bot.db.outbox import Topic
from bot.records import EscalationRecord

_ESCALATIONS = EscalationRow.__table__


@dataclass(frozen=True)
class Climb:
    escalation_id: str
    tier: str
    next_action_at: datetime


def claim_due(
    session: Session, now: datetime, limit: int, owner: str, lease: timedelta
) -> list[EscalationRecord]:
    """Escalations whose tier time is up, claimed so that no other sweep takes them:
    FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite, a conditional UPDATE taking a lease.
    Each comes with its paging state, not its cards."""
    connection = session.connection()
    # Only open escalations carry a next_action_at (acknowledging, deciding and expiring
    # clear it), so the indexed column alone finds the due ones. A `state` condition
    # here would tempt the planner into the state index: 100,000 open rows, then a sort.
    due = (_ESCALATIONS.c.next_action_at <= now,)
    if connection.dialect.name == "postgresql":
        query = (
            select(*_ESCALATIONS.c)
            .where(*due)
            .order_by(_ESCALATIONS.c.next_action_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(connection.execute(query))
    else:
        free = (_ESCALATIONS.c.lease_until.is_(None)) | (_ESCALATIONS.c.lease_until < now)
        ids = (
            select(_ESCALATIONS.c.id)
            .where(*due, free)
            .order_by(_ESCALATIONS.c.next_action_at)
            .limit(limit)
            .scalar_subquery()
        )
        claim = (
            update(_ESCALATIONS)
            .where(_ESCALATIONS.c.id.in_(ids), free)
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(*_ESCALATIONS.c)
        )
        rows = list(connection.execute(claim))
    pages = outbox.page_states(session, [row.id for row in rows])
    return [record_of(row, page=pages.get(row.id)) for row in rows]


_CLIMB = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"))
    .values(
        tier=bindparam("p_tier"),
        tier_entered_at=bindparam("p_at"),
        next_action_at=bindparam("p_next"),
        lease_owner=None,
        lease_until=None,
    )
)
_EXPIRE = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"), _ESCALATIONS.c.state == "open")
    .values(
        state="expired",
        decided_by="policy",
        decided_at=bindparam("p_at"),
        next_action_at=None,
        lease_owner=None,
        lease_until=None,
    )
)
_STOP = (
    _ESCALATIONS.update()
    .where(_ESCALATIONS.c.id == bindparam("p_id"))
    .values(next_action_at=None, lease_owner=None, lease_until=None)
)


@dataclass(frozen=True)
class Clock:
    """A tier's card was posted: its deadline runs to `next_action_at` from now."""

    escalation_id: str
    tier: str
    next_action_at: datetime


_START = (
    _ESCALATIONS.update()
    .where(
        _ESCALATIONS.c.id == bindparam("p_id"),
        _ESCALATIONS.c.tier == bindparam("p_tier"),
        _ESCALATIONS.c.state == "open",
        _ESCALATIONS.c.next_action_at.is_not(None),
    )
    .values(next_action_at=bindparam("p_next"))
)


def start_clocks(session: Session, clocks: Sequence[Clock]) -> None:
    """Each escalation still open in the card's tier runs to its new deadline (one
    acknowledged, decided or climbed on meanwhile keeps what it has)."""
    if clocks:
        session.connection().execute(
            _START,
            [
                {"p_id": c.escalation_id, "p_tier": c.tier, "p_next": c.next_action_at}
                for c in clocks
            ],
        )


def climb(session: Session, climbs: Sequence[Climb], at: datetime) -> None:
    """Move each escalation to its next tier (its new cards are added apart)."""
    if climbs:
        session.connection().execute(
            _CLIMB,
            [
                {"p_id": c.escalation_id, "p_tier": c.tier, "p_at": at, "p_next": c.next_action_at}
                for c in climbs
            ],
        )


def expire(session: Session, escalation_ids: Sequence[str], at: datetime) -> None:
    """Expire each open escalation; those that paged owe PagerDuty the resolve."""
    if escalation_ids:
        session.connection().execute(_EXPIRE, [{"p_id": i, "p_at": at} for i in escalation_ids])
        outbox.want(session, Topic.PAGE, escalation_ids, "resolve", at)


def stop_clock(session: Session, escalation_ids: Sequence[str]) -> None:
    if escalation_ids:
        session.connection().execute(_STOP, [{"p_id": i} for i in escalation_ids])
