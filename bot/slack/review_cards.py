"""Review cards in Slack, for the Slack worker: post those owed (a few at a time, each
drawn from the review as it is at that moment) and redraw one after its verdict."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient

from blocks.card import Card
from blocks.review import review_card
from bot.core.review_delivery import PendingReview, ReviewDelivery, review_channel
from bot.policy import PolicyHolder
from bot.slack.client import slack_error
from bot.slack.outage import reported
from bot.slack.pacing import ChannelPacer

log = logging.getLogger(__name__)


class ReviewCards:
    def __init__(
        self,
        client: WebClient,
        reviews: ReviewDelivery,
        policies: PolicyHolder,
        *,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self.client = client
        self.reviews = reviews
        self.policies = policies
        self.pacer = pacer or ChannelPacer()

    def post_owed(self, before_each: Callable[[], object] = lambda: None) -> int:
        """Post the review cards owed; `before_each` runs before each post (the worker
        posts escalation cards that became due meanwhile: they never wait behind these)."""
        batch = self.reviews.claim()
        posted = 0
        with self.reviews.holding(batch):
            for claimed in batch:
                before_each()
                pending = self.reviews.current(claimed)
                if pending is not None and self._post(pending):
                    posted += 1
        return posted

    def _post(self, pending: PendingReview) -> bool:
        channel = review_channel(self.policies.current, pending)
        card = review_card(pending.review, pending.escalation)
        self.pacer.take(channel)
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                blocks=card.blocks,
                text=card.text,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            delay = self.reviews.failed(pending, slack_error(exc))
            if not reported(self.client, exc):
                log.warning(
                    "review card %d not posted (%s); retrying in %ss",
                    pending.review.id,
                    slack_error(exc),
                    int(delay.total_seconds()),
                )
            return False
        self.reviews.posted(pending, channel, response["ts"])
        self._redraw_if_changed(pending.review.id, card)
        return True

    def _redraw_if_changed(self, review_id: int, posted: Card) -> None:
        """A verdict that landed while the card was being posted found no card to redraw
        yet: draw it again, if it now differs."""
        try:
            self.redraw(review_id, unless=posted)
        except Exception as exc:
            if not reported(self.client, exc):
                log.warning("review card %d not redrawn (%s)", review_id, slack_error(exc))

    def redraw(self, review_id: int, *, unless: Card | None = None) -> None:
        """Draw a posted review card again from the review as it is (after its verdict);
        a failure is raised, for the audit follower to try again."""
        found = self.reviews.find(review_id)
        if found is None or found.review.ts is None or found.review.channel is None:
            return  # not posted yet: it is drawn as it is when it is
        card = review_card(found.review, found.escalation)
        if unless is not None and card.blocks == unless.blocks:
            return
        self.client.chat_update(
            channel=found.review.channel, ts=found.review.ts, blocks=card.blocks, text=card.text
        )
