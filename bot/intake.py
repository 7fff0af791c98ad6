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
from bot.streams import GROUP, Entry, StreamConsumer
from bot.validation import MAX_DEPTH, load_json, one_line

log = logging.getLogger(__name__)

# Errors that no retry cures: the entry is rejected at once.
FOREVER_INVALID = (ValueError, InvalidInput, RecursionError, DataError)

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
        options.setdefault("batch", 200)  # stored a batch at a time (one transaction)
        super().__init__(client, keys.escalations, **options)
        self.service = service
        self.max_deliveries = max_deliveries
        self.stats = IntakeStats()

    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        return self._handled([Entry(entry_id, fields, deliveries)])[0]

    def dispatch_batch(self, batch: list[Entry]) -> None:
        """A batch read together is stored together (one transaction); the entries
        handled are acknowledged in one call."""
        done = [entry.id for entry, ok in zip(batch, self._handled(batch), strict=True) if ok]
        if done:
            self.client.xack(self.stream, GROUP, *done)

    def _handled(self, batch: list[Entry]) -> list[bool]:
        """For each entry, whether it is done with (opened, found, or rejected); the
        rejected are recorded in the order of the stream."""
        errors: dict[int, Exception] = {}
        parsed: list[tuple[int, Escalation]] = []
        for index, entry in enumerate(batch):
            try:
                parsed.append((index, self._parse(entry.fields.get("payload"), entry.fields)))
            except (ValueError, RecursionError) as exc:
                errors[index] = exc
        opened = self.service.open_escalations([escalation for _, escalation in parsed])
        for (index, _), outcome in zip(parsed, opened, strict=True):
            if outcome.error is not None:
                errors[index] = outcome.error
            elif outcome.created:
                self.stats.opened += 1
            else:
                self.stats.duplicates += 1
        answers: list[bool] = [True] * len(batch)
        for index, entry in enumerate(batch):
            error = errors.get(index)
            if error is None:
                continue
            if isinstance(error, FOREVER_INVALID):
                self._refuse(entry, error)
            else:
                answers[index] = self._failed(entry, error)
        return answers

    def _refuse(self, entry: Entry, exc: BaseException) -> None:
        """Can never be valid, however often it is tried: rejected at once, with why."""
        raw = entry.fields.get("payload")
        self._reject(entry.id, raw if raw is not None else json.dumps(entry.fields), _why(exc))

    def _failed(self, entry: Entry, exc: Exception) -> bool:
        """A passing failure: pending, retried; rejected after `max_deliveries`."""
        if entry.deliveries < self.max_deliveries:
            log.warning("intake: %s failed (%s); it stays pending and is retried", entry.id, exc)
            return False
        log.error("intake: giving up on %s after %d attempts: %s", entry.id, entry.deliveries, exc)
        self._reject(
            entry.id,
            entry.fields.get("payload") or "",
            f"could not be stored after {entry.deliveries} attempts: {exc}",
        )
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
