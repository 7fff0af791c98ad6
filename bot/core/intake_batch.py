"""Opening escalations a batch at a time: what intake reads together is stored in one
transaction, each escalation exactly as `open_escalation` would store it (redacted, its
placeholders in Redis first, its raw copy under `store_raw`, idempotent per id).

A batch the database refuses (one entry it cannot store) is stored again one escalation
at a time, so one bad entry never costs the others theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.contracts import Escalation
from bot.core.escalations import Escalations
from bot.core.events import ServiceEvent
from bot.db import bulk
from bot.db.escalations import NewEscalation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Opened:
    """One escalation of a batch: newly opened, found (the same id again), or refused
    (`error`, raised as `open_escalation` would have raised it)."""

    created: bool = False
    error: Exception | None = None


@dataclass(frozen=True)
class _Staged:
    index: int
    new: NewEscalation
    raw: tuple[Escalation, dict[str, str]] | None


class BatchOpening(Escalations):
    def open_escalations(self, batch: Sequence[Escalation]) -> list[Opened]:
        """Open each (or find it), the new ones in one transaction; one answer per item,
        in order."""
        answers: list[Opened] = [Opened() for _ in batch]
        staged: list[_Staged] = []
        ids: set[str] = set()
        for index, escalation in enumerate(batch):
            try:
                new, evaluation, raw = self._prepare(escalation)
                if new.decided is not None:  # the policy decides it: its own audited path
                    _record, created = self._decided_by_policy(new, evaluation, raw)
                    answers[index] = Opened(created=created)
                    continue
            except Exception as exc:
                answers[index] = Opened(error=exc)
                continue
            if new.id in ids:
                continue  # the same id twice in one batch: the first opens it
            ids.add(new.id)
            staged.append(_Staged(index, new, raw))
        if not staged:
            return answers
        try:
            stored = self._store_batch(staged)
        except Exception as exc:
            log.info("a batch of %d escalations stored one by one (%s)", len(staged), exc)
            stored = set()
            for item in staged:
                try:
                    stored |= self._store_batch([item])
                except Exception as one:
                    answers[item.index] = Opened(error=one)
        for item in staged:
            if answers[item.index].error is not None:
                continue
            if item.new.id in stored:
                answers[item.index] = Opened(created=True)
                new = item.new
                opened = {
                    "task_type": new.task_type or "",
                    "severity": new.severity,
                    "kind": new.kind,
                }
                self._emit(
                    ServiceEvent("opened", f"agent:{new.agent}", new.task_id, new.id, detail=opened)
                )
            else:  # the same id again: an agent asking again after a restart
                with self.store.reading() as session:
                    existing = self._existing(session, item.new.id)
                self._redeliver_decision(existing)
        return answers

    def _store_batch(self, staged: Sequence[_Staged]) -> set[str]:
        with self.store.transaction() as session:
            created = bulk.insert_many(session, [item.new for item in staged])
            for item in staged:
                if item.raw is not None and item.new.id in created:
                    self._keep_raw(session, item.new.id, *item.raw)
        return created
