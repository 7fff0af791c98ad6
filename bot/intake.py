"""Intake: the `escalations` stream turned into escalations through the service.

An entry that cannot become an escalation is recorded as rejected (with why) and
acknowledged, so it never blocks the ones behind it. An entry that fails for a passing
reason (the database is down) stays pending and is retried; after `max_deliveries`
attempts it is recorded as rejected too, so nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError
from sqlalchemy.exc import DataError

from bot.contracts import Escalation
from bot.core import EscalationService
from bot.errors import InvalidInput
from bot.keys import KeyNames
from bot.streams import GROUP, StreamConsumer
from bot.validation import MAX_DEPTH, load_json, one_line

log = logging.getLogger(__name__)

__all__ = ["GROUP", "Intake", "IntakeStats"]


@dataclass
class IntakeStats:
    opened: int = 0
    duplicates: int = 0
    rejected: int = 0


class Intake(StreamConsumer):
    name = "intake"

    def __init__(
        self,
        client: redis.Redis,
        keys: KeyNames,
        service: EscalationService,
        *,
        max_deliveries: int = 5,
        **options: Any,
    ) -> None:
        super().__init__(client, keys.escalations, **options)
        self.service = service
        self.max_deliveries = max_deliveries
        self.stats = IntakeStats()

    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        raw = fields.get("payload")
        try:
            escalation = self._parse(raw, fields)
            _view, created = self.service.open_escalation(escalation)
        except (ValueError, InvalidInput, RecursionError, DataError) as exc:
            # Can never be valid, however often it is tried: rejected at once, with why.
            self._reject(entry_id, raw if raw is not None else json.dumps(fields), _why(exc))
            return True
        except Exception as exc:
            if deliveries < self.max_deliveries:
                log.warning(
                    "intake: %s failed (%s); it stays pending and is retried", entry_id, exc
                )
                return False
            log.exception("intake: giving up on %s after %d attempts", entry_id, deliveries)
            self._reject(
                entry_id, raw or "", f"could not be stored after {deliveries} attempts: {exc}"
            )
            return True
        if created:
            self.stats.opened += 1
        else:
            self.stats.duplicates += 1
        return True

    @staticmethod
    def _parse(raw: str | None, fields: dict[str, str]) -> Escalation:
        if raw is None:
            names = ", ".join(sorted(fields)) or "none"
            raise ValueError(f"the entry has no `payload` field (fields: {names})")
        data = load_json(raw)  # strict, and nested at most MAX_DEPTH levels
        if not isinstance(data, dict):
            raise ValueError("payload must be a JSON object")
        try:
            return Escalation.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"invalid escalation: {one_line(exc)}") from None

    def _reject(self, entry_id: str, raw: str, reason: str) -> None:
        self.service.record_rejected_entry(entry_id, raw, reason)
        self.stats.rejected += 1
        log.warning("intake: rejected %s: %s", entry_id, reason)


def _why(exc: BaseException) -> str:
    if isinstance(exc, InvalidInput):
        return exc.message
    if isinstance(exc, RecursionError):  # deep inside something the depth bound let pass
        return f"payload too deeply nested to process ({MAX_DEPTH} levels at most)"
    if isinstance(exc, DataError):  # the database refuses the value itself
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else "refused by the database"
        return f"payload cannot be stored: {detail}"
    return str(exc)
