"""Review cards owed to the chat: each sampled review's card, from the one outbox (topic
`review`, claimed with a lease, retried with jittered backoff), as escalation cards are.
Redraws after a verdict follow the audit log (`review` rows), as escalation cards' do.
Nothing here knows Slack; the Slack worker drives it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.core.delivery import CARD_LEASE, heartbeat
from bot.db import escalations, outbox, reviews
from bot.db.outbox import OutboxItem, Topic
from bot.db.store import Store
from bot.policy import Policy
from bot.records import EscalationRecord, ReviewItem

BATCH = 5  # few at a time: the worker looks for escalation cards between two posts


@dataclass(frozen=True)
class PendingReview:
    review: ReviewItem
    escalation: EscalationRecord | None  # the request the policy decided (subject decision)
    attempts: int = 0
    item_id: int = 0


def review_channel(policy: Policy, pending: PendingReview) -> str:
    """Where a review card goes: the first tier of the decided escalation's ladder, or,
    for a finished task, the default ladder's first tier."""
    if pending.escalation is not None:
        return policy.ladder(pending.escalation.ladder)[0].channel
    return policy.first_tier.channel


class ReviewDelivery:
    def __init__(self, store: Store, owner: str, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock

    def claim(self, limit: int = BATCH) -> list[PendingReview]:
        """Review cards owed, leased to this worker for CARD_LEASE (hold them with
        `holding` while posting; take each through `current` just before its post)."""
        with self.store.transaction() as session:
            items = outbox.claim(
                session,
                Topic.REVIEW,
                now=self.clock(),
                lease=CARD_LEASE,
                owner=self.owner,
                limit=limit,
            )
            found = [self._pending(session, item) for item in items]
        return [pending for pending in found if pending is not None]

    @staticmethod
    def _pending(session: Session, item: OutboxItem) -> PendingReview | None:
        review = reviews.find(session, int(item.key))
        if review is None or review.ts is not None:  # gone, or posted already
            outbox.settle(session, Topic.REVIEW, item.key)
            return None
        return PendingReview(review, _decision(session, review), item.attempts, item.id)

    def current(self, pending: PendingReview) -> PendingReview | None:
        """`pending` as things stand now (a verdict may have landed meanwhile: the card is
        then posted with it, without buttons), or None when there is nothing to post."""
        with self.store.reading() as session:
            review = reviews.find(session, pending.review.id)
            decision = _decision(session, review) if review is not None else None
        if review is None or review.ts is not None:
            return None
        return PendingReview(review, decision, pending.attempts, pending.item_id)

    def renew(self, held: Sequence[PendingReview]) -> None:
        with self.store.transaction() as session:
            outbox.renew(
                session,
                [pending.item_id for pending in held],
                owner=self.owner,
                until=self.clock() + CARD_LEASE,
            )

    @contextmanager
    def holding(
        self, held: Sequence[PendingReview], *, every: float | None = None
    ) -> Iterator[None]:
        if not held:
            yield
            return
        with heartbeat(lambda: self.renew(held), f"{len(held)} review card(s)", every):
            yield

    def posted(self, pending: PendingReview, channel: str, ts: str) -> None:
        with self.store.transaction() as session:
            reviews.card_posted(session, pending.review.id, channel, ts, self.clock())
            outbox.sent(session, pending.item_id, reviews.CARD_POST)

    def failed(self, pending: PendingReview, error: str) -> timedelta:
        with self.store.transaction() as session:
            review = reviews.find(session, pending.review.id)
            if review is None or review.ts is not None:
                return timedelta(0)
            _attempts, delay = outbox.failed(session, pending.item_id, error, self.clock())
            return delay

    def find(self, review_id: int) -> PendingReview | None:
        """A review and the decision it is about, as they are now (for a redraw)."""
        with self.store.reading() as session:
            review = reviews.find(session, review_id)
            if review is None:
                return None
            return PendingReview(review, _decision(session, review))

    def owed_count(self) -> int:
        with self.store.reading() as session:
            return outbox.owed_count(session, Topic.REVIEW)


def _decision(session: Session, review: ReviewItem) -> EscalationRecord | None:
    if review.subject != "decision" or review.escalation_id is None:
        return None
    return escalations.find(session, review.escalation_id)
