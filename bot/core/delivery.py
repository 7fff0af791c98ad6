"""What the chat side must still deliver, kept in the database so that nothing is lost:

- cards not yet posted, from the outbox, retried with backoff while the chat is down;
- the audit log, followed by a cursor: each row after it may call for an announcement or
  a card refresh, whichever process (bot, replica, break-glass CLI) wrote it.

Both are held through leases, so that a restart or a second replica neither loses nor
doubles a delivery. Nothing here knows Slack; the Slack worker drives it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.db import audit, cards, cursor, digests, escalations, outbox, tiers
from bot.db.outbox import OutboxItem, Topic
from bot.db.store import Store
from bot.records import AuditRecord, CardRecord, DigestRecord, EscalationRecord

log = logging.getLogger(__name__)

# Cards are held for seconds, and the lease is renewed while they are being posted
# (`holding`), so a worker that dies leaves its cards to another within seconds.
CARD_LEASE = timedelta(seconds=5)
LEASE = timedelta(seconds=30)  # the audit cursor's


@dataclass(frozen=True)
class PendingCard:
    card_id: int
    channel: str
    tier: str
    attempts: int
    escalation: EscalationRecord
    item_id: int = 0
    waiting_since: datetime | None = None  # when it was owed (its tier's start)


class ChatDelivery:
    def __init__(self, store: Store, owner: str, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock
        self._seq: int | None = None
        self._held_until: datetime | None = None

    # ---------------------------------------------------------------- cards

    def claim_cards(self, limit: int = 200) -> list[PendingCard]:
        """Cards owed to the chat, most severe first, then oldest, leased to this worker
        for CARD_LEASE: hold them with `holding` while posting, take each through
        `current` just before its post, and `release` those a paced channel cannot take
        yet."""
        now = self.clock()
        claimed: list[PendingCard] = []
        with self.store.transaction() as session:
            items = outbox.claim(
                session, Topic.CARD, now=now, lease=CARD_LEASE, owner=self.owner, limit=limit
            )
            found = escalations.find_many(session, [item.escalation_id or "" for item in items])
            for item in items:
                pending = self._pending(session, found.get(item.escalation_id or ""), item)
                if pending is not None:
                    claimed.append(pending)
        return claimed

    def current(self, pending: PendingCard) -> PendingCard | None:
        """`pending` as things stand now, just before it is posted, or None if there is
        nothing to post any more. A card is always drawn from this, never from the state
        at its claim: the escalation may have climbed on or ended meanwhile (a batch can
        take a while to post), and the card then says so, without buttons once it ended.
        Every tier's channel gets its card, late if Slack was down, as it would have had
        Slack never been: one that climbed on says where to, one that ended says how."""
        with self.store.reading() as session:
            found = escalations.find(session, pending.escalation.id)
            card = _card(found, pending.card_id)
        if found is not None and card is not None and (card.ts or card.digest_id) is not None:
            return None  # posted meanwhile (by a worker that took over a lapsed lease)
        if found is None or card is None:
            with self.store.transaction() as session:
                outbox.settle(session, Topic.CARD, str(pending.card_id))
            return None
        return PendingCard(
            pending.card_id,
            card.channel,
            card.tier,
            pending.attempts,
            found,
            pending.item_id,
            pending.waiting_since,
        )

    @staticmethod
    def _pending(
        session: Session, found: EscalationRecord | None, item: OutboxItem
    ) -> PendingCard | None:
        """The card to post, or None (and the row settled) when there is none: the
        escalation or card is gone, or the card is posted already."""
        card_id = int(item.key)
        card = _card(found, card_id)
        if found is None or card is None or card.ts is not None or card.digest_id is not None:
            outbox.settle(session, Topic.CARD, item.key)
            return None
        return PendingCard(
            card_id, card.channel, card.tier, item.attempts, found, item.id, item.created_at
        )

    def renew_cards(self, held: Sequence[PendingCard]) -> None:
        """Extend the lease of cards still held (those posted or failed are released)."""
        with self.store.transaction() as session:
            outbox.renew(
                session,
                [pending.item_id for pending in held],
                owner=self.owner,
                until=self.clock() + CARD_LEASE,
            )

    @contextmanager
    def holding(self, held: Sequence[PendingCard], *, every: float | None = None) -> Iterator[None]:
        """Keep the lease on `held` while the block posts them: a heartbeat renews it every
        third of CARD_LEASE, so a short lease is safe however long one post takes (a 429's
        Retry-After, a slow Slack)."""
        if not held:
            yield
            return
        with heartbeat(lambda: self.renew_cards(held), f"{len(held)} card(s)", every):
            yield

    def cards_due(self) -> bool:
        """Whether a card is owed and free to post now (a read, taking no lock)."""
        with self.store.reading() as session:
            return outbox.has_due(session, Topic.CARD, self.clock())

    def release(self, held: Sequence[PendingCard]) -> None:
        """Give back cards claimed but not posted (their channel is paced): still owed,
        in their place in the order."""
        if held:
            with self.store.transaction() as session:
                outbox.release(session, [pending.item_id for pending in held], self.owner)

    def card_posted(
        self,
        pending: PendingCard,
        ts: str,
        *,
        deadline: datetime | None = None,
        permalink: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Recorded the moment Slack answers, so that replies in its thread find it; the
        tier's clock starts now (`deadline`, the one the card shows)."""
        with self.store.transaction() as session:
            cards.card_posted(session, pending.card_id, ts, at or self.clock(), permalink)
            outbox.sent(session, pending.item_id, cards.CARD_POST)
            if deadline is not None:
                tiers.start_clocks(session, [_clock_of(pending, deadline)])

    def digest_posted(
        self,
        channel: str,
        ts: str,
        held: Sequence[tuple[PendingCard, datetime | None]],
        *,
        permalink: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """A digest holding `held` (each with the deadline it now runs to) was posted as
        `ts`: its cards count as posted, their tiers' clocks start; the digest's id."""
        with self.store.transaction() as session:
            digest_id = digests.record(
                session,
                channel,
                ts,
                at or self.clock(),
                [pending.card_id for pending, _ in held],
                permalink,
            )
            for pending, _ in held:
                outbox.sent(session, pending.item_id, cards.CARD_POST)
            tiers.start_clocks(
                session,
                [_clock_of(pending, deadline) for pending, deadline in held if deadline],
            )
        return digest_id

    def digest(self, digest_id: int) -> DigestRecord | None:
        with self.store.reading() as session:
            return digests.find(session, digest_id)

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


@contextmanager
def heartbeat(renew: Callable[[], None], what: str, every: float | None) -> Iterator[None]:
    """Call `renew` every `every` seconds (a third of CARD_LEASE by default) while the
    block runs: the lease on what is being posted outlives however long one post takes."""
    stop = threading.Event()
    interval = every if every is not None else CARD_LEASE.total_seconds() / 3

    def beat() -> None:
        while not stop.wait(interval):
            try:
                renew()
            except Exception as exc:  # the database hiccups: the next beat tries again
                log.warning("could not renew the lease of %s: %s", what, exc)

    heart = threading.Thread(target=beat, name="card-lease", daemon=True)
    heart.start()
    try:
        yield
    finally:
        stop.set()
        heart.join()


def _clock_of(pending: PendingCard, deadline: datetime) -> tiers.Clock:
    return tiers.Clock(pending.escalation.id, pending.tier, deadline)


def _card(found: EscalationRecord | None, card_id: int) -> CardRecord | None:
    return next((c for c in found.cards if c.id == card_id), None) if found else None
