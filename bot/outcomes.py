"""The `outcomes` stream, read for what agents report themselves: a task that completed
may be sampled for review. The bot's own entries (`source` `bot`: tasks it terminated,
abandoned, expired or rejected) are for the system that owns the user: acknowledged and
left alone. A malformed entry is logged and skipped: it never stops the reader."""

from __future__ import annotations

import logging
from typing import Any

import redis
from pydantic import ValidationError

from bot.contracts import OutcomeEntry
from bot.core import EscalationService
from bot.keys import KeyNames
from bot.streams import StreamConsumer
from bot.validation import one_line

log = logging.getLogger(__name__)


class OutcomesReader(StreamConsumer):
    name = "outcomes"

    def __init__(
        self, client: redis.Redis, keys: KeyNames, service: EscalationService, **options: Any
    ) -> None:
        super().__init__(client, keys.outcomes, **options)
        self.service = service

    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        try:
            entry = OutcomeEntry.model_validate(fields)
        except ValidationError as exc:
            log.warning("outcomes: %s skipped: %s", entry_id, one_line(exc))
            return True
        if entry.source == "agent" and entry.status == "completed":
            self.service.task_finished(
                entry.task_id, entry.agent, task_type=entry.task_type or None, notice=entry.notice
            )
        return True
