"""What the chat side must still deliver, kept in the database so that nothing is lost:

- cards not yet posted, from the outbox, retried with backoff while the chat is down;
- the audit log, followed by a cursor: each row after it may call for an announcement or
  a card refresh, whichever process (bot, replica, break-glass CLI) wrote it.

Both are held through leases, so that a restart or a second replica neither loses nor
doubles a delivery. Nothing here knows Slack; the Slack worker drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, utcnow
from bot.db import audit, cards, cursor, escalations, outbox
from bot.db.outbox import Topic
from bot.db.store import Store
from bot.records import AuditRecord, EscalationRecord

LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class PendingCard:
    card_id: int
    channel: str
    tier: str
    attempts: int
    escalation: EscalationRecord
    item_id: int = 0


class ChatDelivery:
    def __init__(self, store: Store, owner: str, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock
        self._seq: int | None = None
        self._held_until: datetime | None = None

    # ---------------------------------------------------------------- cards

    def claim_cards(self, limit: int = 20) -> list[PendingCard]:
        now = self.clock()
        claimed: list[PendingCard] = []
        with self.store.transaction() as session:
            items = outbox.claim(
                session, Topic.CARD, now=now, lease=LEASE, owner=self.owner, limit=limit
            )
            for item in items:
                found = escalations.find(session, item.escalation_id)
                card_id = int(item.key)
                card = next((c for c in found.cards if c.id == card_id), None) if found else None
                if found is None or card is None:
                    outbox.settle(session, Topic.CARD, item.key)
                    continue
                claimed.append(
                    PendingCard(card_id, card.channel, card.tier, item.attempts, found, item.id)
                )
        return claimed

    def card_posted(self, pending: PendingCard, ts: str) -> None:
        """Recorded the moment Slack answers, so that replies in its thread find it."""
        with self.store.transaction() as session:
            cards.card_posted(session, pending.card_id, ts, self.clock())
            outbox.sent(session, pending.item_id, cards.CARD_POST)

    def card_permalink(self, pending: PendingCard, permalink: str) -> None:
        with self.store.transaction() as session:
            cards.card_permalink(session, pending.card_id, permalink)

    def card_failed(self, pending: PendingCard, error: str) -> timedelta:
        with self.store.transaction() as session:
            if cards.card_is_posted(session, pending.card_id):
                return timedelta(0)
            _attempts, delay = outbox.failed(session, pending.item_id, error, self.clock())
            return delay

    def pending_card_count(self) -> int:
        with self.store.reading() as session:
            return outbox.owed_count(session, Topic.CARD)

    # ---------------------------------------------------------------- the audit cursor

    def claim_cursor(self) -> int | None:
        """The seq delivered so far, if this worker holds (or now takes) the cursor.

        While the lease is fresh the answer comes from memory: nobody else moves a cursor
        we hold, so the database is asked only to take or renew the lease."""
        now = self.clock()
        if self._held_until is not None and now < self._held_until - LEASE / 2:
            return self._seq
        with self.store.transaction() as session:
            seq = cursor.take(session, self.owner, now, now + LEASE)
        if seq is None:
            self._held_until = None
            return None
        self._seq = seq
        self._held_until = now + LEASE
        return seq

    def has_records_after(self, seq: int) -> bool:
        with self.store.reading() as session:
            return audit.has_records_after(session, seq)

    @property
    def known_seq(self) -> int | None:
        """The cursor as this worker last saw it (None before the first claim)."""
        return self._seq

    def records_after(self, seq: int, limit: int = 100) -> list[AuditRecord]:
        with self.store.reading() as session:
            return audit.records_after(session, seq, limit)

    def advance(self, seq: int) -> None:
        with self.store.transaction() as session:
            cursor.update_held(session, self.owner, seq=seq, failures=0, last_error=None)
        self._seq = seq

    def cursor_failed(self, error: str) -> int:
        with self.store.transaction() as session:
            return cursor.count_failure(session, self.owner, error)

    def release_cursor(self) -> None:
        with self.store.transaction() as session:
            cursor.update_held(session, self.owner, lease_owner=None, lease_until=None)
        self._held_until = None

    # ---------------------------------------------------------------- lookups

    def escalation(self, escalation_id: str) -> EscalationRecord | None:
        with self.store.reading() as session:
            return escalations.find(session, escalation_id)
