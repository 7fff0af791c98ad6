"""Relays the `agent-events` stream (an agent's own words) into its card's thread."""

from __future__ import annotations

import logging
from typing import Any

import redis
from pydantic import ValidationError
from slack_sdk import WebClient

from blocks.text import escape, fit
from bot.contracts import AgentEvent
from bot.control import ControlPlaneError
from bot.core.reads import Reads
from bot.keys import KeyNames
from bot.policy import Policy, PolicyHolder, holder_of
from bot.redaction import Redactor
from bot.slack.client import is_permanent, slack_error
from bot.slack.outage import reported
from bot.slack.pacing import ChannelPacer
from bot.streams import StreamConsumer
from bot.validation import one_line

log = logging.getLogger(__name__)


class AgentEventsRelay(StreamConsumer):
    name = "agent-events"

    def __init__(
        self,
        client: redis.Redis,
        keys: KeyNames,
        slack: WebClient,
        reads: Reads,
        policy: Policy | PolicyHolder,
        *,
        pacer: ChannelPacer | None = None,
        **options: Any,
    ) -> None:
        super().__init__(client, keys.agent_events, **options)
        self.slack = slack
        self.pacer = pacer or ChannelPacer()
        self.reads = reads
        self.policies = holder_of(policy)

    def _redacted(self, escalation_id: str, text: str) -> str:
        """The agent's words with its escalation's placeholders: a value the card shows as
        `[email-1]` is `[email-1]` in the thread too; a new one is numbered on and kept."""
        rules = self.policies.current.redaction.rules
        if not rules.active:
            return text
        control = self.reads.control
        redactor = Redactor(rules, control.placeholders(escalation_id))
        said = redactor.text(text)
        control.save_placeholders(escalation_id, redactor.added)
        return said

    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        try:
            event = AgentEvent.model_validate(fields)
        except ValidationError as exc:
            log.warning("agent-events: %s dropped: %s (%r)", entry_id, one_line(exc), fields)
            return True
        target = self.reads.thread_for(event.task_id, event.escalation_id or None)
        text = f"🤖 *{escape(event.task_id)}*: {escape(fit(event.text, 3500))}"
        if target is None:
            channel, thread_ts = self.policies.current.first_tier.channel, None
            text += "\n_(no escalation of this task is known)_"
        else:
            view, card = target
            if card is None or card.ts is None:
                # Its card is not posted yet (Slack down?): keep the entry until it is.
                return False
            channel, thread_ts = card.channel, card.ts
            try:
                said = escape(self._redacted(view.id, fit(event.text, 3500)))
            except ControlPlaneError as exc:
                log.warning("agent-events: %s waits for Redis (%s)", entry_id, exc)
                return False
            text = (
                f"🤖 *{escape(view.agent)}* ({escape(event.task_id)}): {said}"
                if view.agent
                else f"🤖 *{escape(event.task_id)}*: {said}"
            )
        self.pacer.take(channel)
        try:
            self.slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        except Exception as exc:
            if is_permanent(exc) and deliveries >= 3:
                log.error(
                    "agent-events: %s dropped after %d attempts: %s",
                    entry_id,
                    deliveries,
                    slack_error(exc),
                )
                return True
            if not reported(self.slack, exc):
                log.warning(
                    "agent-events: %s not posted (%s); retrying", entry_id, slack_error(exc)
                )
            return False
        return True
