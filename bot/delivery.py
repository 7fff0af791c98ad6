"""What the chat side must still deliver, kept in the database so that nothing is lost.

Two queues, both claimed with leases so that a restart or a second replica neither loses
nor doubles a delivery:

- cards not yet posted (`cards.ts` is unset), retried with backoff while the chat is down;
- the audit log, followed by a cursor: each row after it may call for an announcement or
  a card refresh, whichever process (bot, replica, break-glass CLI) wrote it.

Nothing here knows Slack; the Slack worker drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from bot.clock import Clock, utcnow
from bot.db import queries
from bot.db.audit import record_of
from bot.db.models import AuditRow, CardRow, EscalationRow, NotifyCursor
from bot.db.store import Store
from bot.views import AuditRecord, CardView, EscalationView

LEASE = timedelta(seconds=30)
MAX_BACKOFF = timedelta(seconds=60)
CURSOR_ID = 1


@dataclass(frozen=True)
class PendingCard:
    card_id: int
    channel: str
    tier: str
    attempts: int
    escalation: EscalationView


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts, 6)))


class Delivery:
    def __init__(self, store: Store, owner: str, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock
        self._seq: int | None = None
        self._held_until: datetime | None = None

    # ---------------------------------------------------------------- cards

    def claim_cards(self, limit: int = 20) -> list[PendingCard]:
        now = self.clock()
        free = or_(CardRow.claimed_until.is_(None), CardRow.claimed_until < now)
        due = and_(CardRow.ts.is_(None), CardRow.next_attempt_at <= now, free)
        claimed: list[PendingCard] = []
        with self.store.reading() as session:
            ids = list(
                session.scalars(select(CardRow.id).where(due).order_by(CardRow.id).limit(limit))
            )
        for card_id in ids:
            with self.store.transaction() as session:
                won = session.execute(
                    update(CardRow)
                    .where(CardRow.id == card_id, due)
                    .values(claimed_until=now + LEASE)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if not won:
                    continue
                card = session.get(CardRow, card_id)
                assert card is not None
                view = queries.load_escalation(session, card.escalation_id)
                assert view is not None
                claimed.append(PendingCard(card.id, card.channel, card.tier, card.attempts, view))
        return claimed

    def card_posted(self, card_id: int, ts: str) -> None:
        """Recorded the moment Slack answers, so that replies in its thread find it."""
        self._update_card(
            card_id,
            ts=ts,
            posted_at=self.clock(),
            claimed_until=None,
            next_attempt_at=None,
            last_error=None,
        )

    def card_permalink(self, card_id: int, permalink: str) -> None:
        self._update_card(card_id, permalink=permalink)

    def _update_card(self, card_id: int, **values: Any) -> None:
        with self.store.transaction() as session:
            session.execute(
                update(CardRow)
                .where(CardRow.id == card_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def card_failed(self, card_id: int, error: str) -> timedelta:
        with self.store.transaction() as session:
            card = session.get(CardRow, card_id, with_for_update=True)
            if card is None or card.ts is not None:
                return timedelta(0)
            card.attempts += 1
            delay = backoff(card.attempts)
            card.next_attempt_at = self.clock() + delay
            card.claimed_until = None
            card.last_error = error[:2000]
            return delay

    def pending_card_count(self) -> int:
        with self.store.reading() as session:
            count = select(func.count()).select_from(CardRow).where(CardRow.ts.is_(None))
            return session.scalar(count) or 0

    # ---------------------------------------------------------------- the audit cursor

    def claim_cursor(self) -> int | None:
        """The seq delivered so far, if this worker holds (or now takes) the cursor.

        While the lease is fresh the answer comes from memory: nobody else moves a cursor
        we hold, so the database is asked only to take or renew the lease."""
        now = self.clock()
        if self._held_until is not None and now < self._held_until - LEASE / 2:
            return self._seq
        with self.store.transaction() as session:
            won = session.execute(
                update(NotifyCursor)
                .where(
                    NotifyCursor.id == CURSOR_ID,
                    or_(
                        NotifyCursor.lease_owner.is_(None),
                        NotifyCursor.lease_owner == self.owner,
                        NotifyCursor.lease_until < now,
                    ),
                )
                .values(lease_owner=self.owner, lease_until=now + LEASE)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not won:
                self._held_until = None
                return None
            self._seq = session.scalar(select(NotifyCursor.seq).where(NotifyCursor.id == CURSOR_ID))
            self._held_until = now + LEASE
            return self._seq

    def has_records_after(self, seq: int) -> bool:
        with self.store.reading() as session:
            return (
                session.scalar(select(AuditRow.seq).where(AuditRow.seq > seq).limit(1)) is not None
            )

    @property
    def known_seq(self) -> int | None:
        """The cursor as this worker last saw it (None before the first claim)."""
        return self._seq

    def records_after(self, seq: int, limit: int = 100) -> list[AuditRecord]:
        with self.store.reading() as session:
            rows = session.scalars(
                select(AuditRow).where(AuditRow.seq > seq).order_by(AuditRow.seq).limit(limit)
            )
            return [record_of(row) for row in rows]

    def advance(self, seq: int) -> None:
        self._update_cursor(seq=seq, failures=0, last_error=None)
        self._seq = seq

    def cursor_failed(self, error: str) -> int:
        with self.store.transaction() as session:
            cursor = session.get(NotifyCursor, CURSOR_ID, with_for_update=True)
            assert cursor is not None
            if cursor.lease_owner != self.owner:
                return 0
            cursor.failures += 1
            cursor.last_error = error[:2000]
            return cursor.failures

    def release_cursor(self) -> None:
        self._update_cursor(lease_owner=None, lease_until=None)
        self._held_until = None

    def _update_cursor(self, **values: Any) -> None:
        with self.store.transaction() as session:
            session.execute(
                update(NotifyCursor)
                .where(NotifyCursor.id == CURSOR_ID, NotifyCursor.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    # ---------------------------------------------------------------- lookups

    def escalation(self, escalation_id: str) -> EscalationView | None:
        with self.store.reading() as session:
            return queries.load_escalation(session, escalation_id)

    def escalation_for_message(self, channel: str, ts: str) -> EscalationView | None:
        """The escalation whose card is the message (channel, ts): a thread's parent."""
        with self.store.reading() as session:
            escalation_id = session.scalar(
                select(CardRow.escalation_id).where(CardRow.channel == channel, CardRow.ts == ts)
            )
            return queries.load_escalation(session, escalation_id) if escalation_id else None

    def thread_for(
        self, task_id: str, escalation_id: str | None
    ) -> tuple[EscalationView, CardView | None] | None:
        """Where an agent's words go: its escalation's newest posted card (or its task's
        newest escalation when no id is given). The card is None until it is posted."""
        with self.store.reading() as session:
            if escalation_id:
                view = queries.load_escalation(session, escalation_id)
            else:
                newest = session.scalar(
                    select(EscalationRow.id)
                    .where(EscalationRow.task_id == task_id)
                    .order_by(EscalationRow.created_at.desc())
                    .limit(1)
                )
                view = queries.load_escalation(session, newest) if newest else None
        if view is None:
            return None
        posted = [card for card in view.cards if card.ts is not None]
        return view, (posted[-1] if posted else None)
