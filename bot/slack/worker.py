"""Delivers to Slack what the database says is owed: unposted cards, then unposted review
cards, then card refreshes and announcements for the audit rows after the cursor.

Woken by this process's own actions (after `gather` seconds, so that a burst becomes one
delivery), and every `poll_interval` seconds for the rest: another replica, the
break-glass CLI, a retry after Slack was down.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime

from slack_sdk import WebClient

from blocks.card import Card
from blocks.messages import announcement, merge_announcements
from bot.clock import Clock, utcnow
from bot.core.delivery import ChatDelivery, PendingCard
from bot.core.review_delivery import ReviewDelivery
from bot.logs import log_ids
from bot.policy import Policy, PolicyHolder, holder_of
from bot.records import CARD_CHANGING_ACTIONS, AuditAction, AuditRecord
from bot.slack.client import is_permanent, slack_error
from bot.slack.outage import reported
from bot.slack.render import render_card
from bot.slack.review_cards import ReviewCards

log = logging.getLogger(__name__)

MAX_PERMANENT_FAILURES = 5


class _Retry(Exception):
    """Stop following the audit log for now; the next tick starts at the same row."""


class SlackWorker:
    def __init__(
        self,
        client: WebClient,
        delivery: ChatDelivery,
        policy: Policy | PolicyHolder,
        *,
        poll_interval: float = 1.0,
        gather: float = 0.1,
        clock: Clock = utcnow,
    ) -> None:
        self.client = client
        self.delivery = delivery
        self.policies = holder_of(policy)
        self.poll_interval = poll_interval
        self.gather = gather
        self.clock = clock
        self._wake = threading.Event()
        reviews = ReviewDelivery(delivery.store, delivery.owner, clock=delivery.clock)
        self.review_cards = ReviewCards(client, reviews, self.policies)

    def wake(self, _event: object = None) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self._wake.wait(self.poll_interval) and self.gather > 0:
                stop.wait(self.gather)  # let a burst of actions gather into one delivery
            self._wake.clear()
            try:
                self.tick()
            except Exception:
                log.exception("slack worker: unexpected error; retrying")
        self.delivery.release_cursor()

    def tick(self) -> None:
        self.post_cards()
        self.post_reviews()
        with contextlib.suppress(_Retry):
            self.follow_audit()

    # ---------------------------------------------------------------- cards

    def post_cards(self) -> int:
        """Post the cards owed, each drawn from its escalation's state at that moment; the
        batch's lease is renewed meanwhile, so a short lease is safe."""
        batch = self.delivery.claim_cards()
        posted = 0
        with self.delivery.holding(batch):
            for claimed in batch:
                pending = self.delivery.current(claimed)
                if pending is not None and self._post_card(pending):
                    posted += 1
        return posted

    def post_reviews(self) -> int:
        """Post the review cards owed, a few at a time; an escalation card that falls due
        meanwhile is posted first: a review never holds up a decision."""
        return self.review_cards.post_owed(before_each=self._cards_first)

    def _cards_first(self) -> None:
        if self.delivery.cards_due():
            self.post_cards()

    def _post_card(self, pending: PendingCard) -> bool:
        now = self.clock()
        card_view = next((c for c in pending.escalation.cards if c.id == pending.card_id), None)
        card = render_card(self.policies.current, pending.escalation, card_view, now)
        try:
            response = self.client.chat_postMessage(
                channel=pending.channel,
                blocks=card.blocks,
                text=card.text,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            delay = self.delivery.card_failed(pending, slack_error(exc))
            if not reported(self.client, exc):
                log.warning(
                    "card for %s not posted (%s); retrying in %ss",
                    pending.escalation.id,
                    slack_error(exc),
                    int(delay.total_seconds()),
                    extra=log_ids(
                        escalation_id=pending.escalation.id, task_id=pending.escalation.task_id
                    ),
                )
            return False
        ts = response["ts"]
        self.delivery.card_posted(pending, ts)
        permalink = self._permalink(pending.channel, ts)
        if permalink:
            self.delivery.card_permalink(pending, permalink)
        self._redraw_if_changed(pending, card, now)
        return True

    def _redraw_if_changed(self, pending: PendingCard, posted: Card, now: datetime) -> None:
        """A decision (or climb) that landed while the card was being posted found no card
        to redraw yet: draw it again from the state as it is now, if that differs."""
        view = self.delivery.escalation(pending.escalation.id)
        card_view = next((c for c in view.cards if c.id == pending.card_id), None) if view else None
        if view is None or card_view is None or card_view.ts is None:
            return
        card = render_card(self.policies.current, view, card_view, now)
        if card.blocks == posted.blocks:
            return
        try:
            self.client.chat_update(
                channel=card_view.channel, ts=card_view.ts, blocks=card.blocks, text=card.text
            )
        except Exception as exc:
            if not reported(self.client, exc):
                log.warning(
                    "card for %s not redrawn (%s)",
                    view.id,
                    slack_error(exc),
                    extra=log_ids(escalation_id=view.id, task_id=view.task_id),
                )

    def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            return self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        except Exception as exc:
            if not reported(self.client, exc):
                log.warning("no permalink for %s/%s (%s)", channel, ts, slack_error(exc))
            return None

    def refresh_cards(self, escalation_id: str) -> None:
        view = self.delivery.escalation(escalation_id)
        if view is None:
            return
        now = self.clock()
        for card_view in view.cards:
            if card_view.ts is None:
                continue  # drawn from the current state when it is posted
            card = render_card(self.policies.current, view, card_view, now)
            self.client.chat_update(
                channel=card_view.channel, ts=card_view.ts, blocks=card.blocks, text=card.text
            )

    # ---------------------------------------------------------------- the audit log

    def follow_audit(self) -> int:
        known = self.delivery.known_seq
        if known is not None and not self.delivery.has_records_after(known):
            return 0  # nothing new: no write, no lock
        seq = self.delivery.claim_cursor()
        if seq is None:
            return 0  # another replica holds the cursor
        delivered = 0
        records = self.delivery.records_after(seq)
        while records:
            self._deliver_or_skip(records)
            seq = records[-1].seq
            self.delivery.advance(seq)  # one write a batch, not one a row
            delivered += len(records)
            records = self.delivery.records_after(seq)
            if records:
                self.post_cards()  # a new card never waits behind a long backlog of redraws
        return delivered

    def _deliver_or_skip(self, records: list[AuditRecord]) -> None:
        """Deliver a batch; a failure stops here (retried next tick from the same row)
        unless it is permanent and has failed MAX_PERMANENT_FAILURES times: then the
        batch is skipped rather than blocking everything after it."""
        try:
            self.deliver(records)
        except Exception as exc:
            failures = self.delivery.cursor_failed(slack_error(exc))
            first, last = records[0].seq, records[-1].seq
            if not is_permanent(exc) or failures < MAX_PERMANENT_FAILURES:
                if not reported(self.client, exc):
                    log.warning(
                        "audit rows %d-%d not delivered to Slack (%s); retrying",
                        first,
                        last,
                        slack_error(exc),
                    )
                raise _Retry from exc
            log.error(
                "audit rows %d-%d skipped after %d failures (%s)",
                first,
                last,
                failures,
                slack_error(exc),
            )

    def deliver(self, records: list[AuditRecord]) -> None:
        """Cards first (redrawing is harmless to repeat), then the announcements, merged:
        Slack allows about one message a second in a channel, and a burst of kills is
        better read as one message anyway."""
        touched = [
            r.escalation_id
            for r in records
            if r.escalation_id and r.action in CARD_CHANGING_ACTIONS
        ]
        for escalation_id in dict.fromkeys(touched):
            self.refresh_cards(escalation_id)
        reviewed = [(r.detail or {})["review"] for r in records if _is_verdict(r)]
        for review_id in dict.fromkeys(reviewed):
            self.review_cards.redraw(review_id)
        found = [message for record in records if (message := announcement(record))]
        for message in merge_announcements(found):
            self.client.chat_postMessage(
                channel=self.policies.current.first_tier.channel,
                blocks=message.blocks,
                text=message.text,
                unfurl_links=False,
            )


def _is_verdict(record: AuditRecord) -> bool:
    """A review's verdict: its card is drawn again."""
    return record.action == AuditAction.REVIEW and isinstance(
        (record.detail or {}).get("review"), int
    )
