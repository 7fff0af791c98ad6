"""Delivers to Slack what the database says is owed: unposted cards (most severe first,
each channel paced, low and medium ones as digests in a flood), then unposted review
cards, then card and digest redraws and announcements for the audit rows after the cursor.

Woken by this process's own actions (after `gather` seconds, so that a burst becomes one
delivery), and every `poll_interval` seconds for the rest: another replica, the
break-glass CLI, a retry after Slack was down.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import replace
from datetime import datetime

from slack_sdk import WebClient

from blocks.card import Card
from blocks.digest import digest_capacity, digest_message
from blocks.messages import announcement, merge_announcements
from bot.clock import Clock, utcnow
from bot.core.delivery import ChatDelivery, PendingCard
from bot.core.delivery_plan import Send, deadline_of, plan
from bot.core.review_delivery import ReviewDelivery
from bot.logs import log_ids
from bot.policy import Policy, PolicyHolder, holder_of
from bot.records import CARD_CHANGING_ACTIONS, AuditAction, AuditRecord
from bot.slack.client import is_permanent, slack_error
from bot.slack.outage import reported
from bot.slack.pacing import ChannelPacer
from bot.slack.permalinks import Permalinks
from bot.slack.render import render_card
from bot.slack.review_cards import ReviewCards

log = logging.getLogger(__name__)

MAX_PERMANENT_FAILURES = 5


class _Retry(Exception):
    """Stop following the audit log for now; the next tick starts at the same row."""


class _Paced(Exception):
    """The announcement's channel cannot take a message yet: come back for it, and post
    the cards owed meanwhile (redrawing the batch's cards again is harmless)."""


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
        pacer: ChannelPacer | None = None,
        workspace_url: str | None = None,
    ) -> None:
        self.client = client
        self.delivery = delivery
        self.policies = holder_of(policy)
        self.poll_interval = poll_interval
        self.gather = gather
        self.clock = clock
        self._wake = threading.Event()
        # One pacer for every thread of the process that posts (pass it around).
        self.pacer = pacer or ChannelPacer()
        self.permalinks = Permalinks(client, workspace_url)
        self._retry_at: float | None = None  # monotonic: a paced channel's next token
        reviews = ReviewDelivery(delivery.store, delivery.owner, clock=delivery.clock)
        self.review_cards = ReviewCards(client, reviews, self.policies, pacer=self.pacer)

    def wake(self, _event: object = None) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            wait = self.poll_interval
            if self._retry_at is not None:
                wait = min(wait, max(self._retry_at - time.monotonic(), 0.0))
                self._retry_at = None
            if self._wake.wait(wait) and self.gather > 0:
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
        """Post the cards owed, most severe first, then oldest, each channel paced; low and
        medium ones as digests in a flood. Each card is drawn from its escalation's state
        at that moment; the batch's lease is renewed meanwhile, so a short lease is safe.
        What a paced channel cannot take yet is given back, still owed, in its place."""
        batch = self.delivery.claim_cards()
        if not batch:
            return 0
        posted = 0
        unsent: list[PendingCard] = []
        with self.delivery.holding(batch):
            now = self.clock()
            todo = plan(
                batch,
                digest_over=self.policies.current.delivery.digest_over,
                now=now,
                digest_capacity=digest_capacity,
            )
            unsent += todo.held
            if todo.wake_at is not None:
                self._retry((todo.wake_at - now).total_seconds())
            for send in todo.sends:
                wait = self.pacer.try_take(send.channel, urgent=send.urgent)
                if wait > 0:
                    unsent += send.cards
                    self._retry(wait)
                elif send.digest:
                    posted += self._post_digest(send)
                else:
                    pending = self.delivery.current(send.cards[0])
                    if pending is not None and self._post_card(pending):
                        posted += 1
            self.delivery.release(unsent)
        return posted

    def _retry(self, seconds: float) -> None:
        """Come back in `seconds` (a paced channel's next token, a digest's gathering)."""
        at = time.monotonic() + max(seconds, 0.01)
        self._retry_at = at if self._retry_at is None else min(self._retry_at, at)

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
        deadline = deadline_of(self.policies.current, pending, now)
        shown = pending.escalation
        if deadline is not None:  # the card shows the deadline its posting starts
            shown = replace(shown, next_action_at=deadline)
        card = render_card(self.policies.current, shown, card_view, now)
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
        derived = self.permalinks.derived(pending.channel, ts)
        self.delivery.card_posted(pending, ts, deadline=deadline, permalink=derived, at=now)
        if derived is None:
            permalink = self.permalinks.asked(pending.channel, ts)
            if permalink:
                self.delivery.card_permalink(pending, permalink)
        self._redraw_if_changed(pending, card, now)
        return True

    def _post_digest(self, send: Send) -> int:
        """One digest for `send.cards` (their claim-time state; drawn again at once if any
        changed meanwhile). Their tiers' clocks start at its posting."""
        now = self.clock()
        policy = self.policies.current
        held = [(card, deadline_of(policy, card, now)) for card in send.cards]
        items = [
            replace(card.escalation, next_action_at=deadline) if deadline else card.escalation
            for card, deadline in held
        ]
        first = min((deadline for _, deadline in held if deadline), default=None)
        message = digest_message(items, tier=send.cards[0].tier, deadline=first)
        try:
            response = self.client.chat_postMessage(
                channel=send.channel,
                blocks=message.blocks,
                text=message.text,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            for card in send.cards:
                self.delivery.card_failed(card, slack_error(exc))
            if not reported(self.client, exc):
                log.warning(
                    "digest of %d card(s) for %s not posted (%s); retrying",
                    len(send.cards),
                    send.channel,
                    slack_error(exc),
                )
            return 0
        ts = response["ts"]
        permalink = self.permalinks.derived(send.channel, ts)
        digest_id = self.delivery.digest_posted(send.channel, ts, held, permalink=permalink, at=now)
        try:
            self.redraw_digest(digest_id, unless=message)
        except Exception as exc:
            if not reported(self.client, exc):
                log.warning("digest %d not redrawn (%s)", digest_id, slack_error(exc))
        return len(send.cards)

    def redraw_digest(self, digest_id: int, *, unless: Card | None = None) -> None:
        """Draw a digest again from its escalations as they are now (a decision, a climb):
        it never shows as waiting what is handled. A failure is raised, for the audit
        follower to try again."""
        digest = self.delivery.digest(digest_id)
        if digest is None or digest.ts is None:
            return
        deadlines = [view.next_action_at for view in digest.items if view.next_action_at]
        message = digest_message(
            digest.items, tier=digest.tier, deadline=min(deadlines, default=None)
        )
        if unless is not None and message.blocks == unless.blocks:
            return
        self.client.chat_update(
            channel=digest.channel, ts=digest.ts, blocks=message.blocks, text=message.text
        )

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

    def refresh_cards(self, escalation_id: str) -> set[int]:
        """Draw the escalation's posted cards again; the digests holding any of its cards,
        for the caller to draw again (once for a batch of changes)."""
        view = self.delivery.escalation(escalation_id)
        if view is None:
            return set()
        now = self.clock()
        digests: set[int] = set()
        for card_view in view.cards:
            if card_view.digest_id is not None:
                digests.add(card_view.digest_id)
            if card_view.ts is None:
                continue  # drawn from the current state when it is posted
            card = render_card(self.policies.current, view, card_view, now)
            self.client.chat_update(
                channel=card_view.channel, ts=card_view.ts, blocks=card.blocks, text=card.text
            )
        return digests

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
        except _Paced as exc:
            raise _Retry from exc
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
        digests: set[int] = set()
        for escalation_id in dict.fromkeys(touched):
            digests |= self.refresh_cards(escalation_id)
        for digest_id in sorted(digests):
            self.redraw_digest(digest_id)
        reviewed = [(r.detail or {})["review"] for r in records if _is_verdict(r)]
        for review_id in dict.fromkeys(reviewed):
            self.review_cards.redraw(review_id)
        found = [message for record in records if (message := announcement(record))]
        channel = self.policies.current.first_tier.channel
        messages = merge_announcements(found)
        # Paced as low and medium messages are (never the tokens kept for high and
        # critical cards), all of the batch's at once or none: none is posted twice, and
        # the worker never waits here while cards are owed.
        if messages and (wait := self.pacer.try_take(channel, urgent=False, count=len(messages))):
            self._retry(wait)
            raise _Paced
        for message in messages:
            self.client.chat_postMessage(
                channel=channel,
                blocks=message.blocks,
                text=message.text,
                unfurl_links=False,
            )


def _is_verdict(record: AuditRecord) -> bool:
    """A review's verdict: its card is drawn again."""
    return record.action == AuditAction.REVIEW and isinstance(
        (record.detail or {}).get("review"), int
    )
