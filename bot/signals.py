"""The `agent-signals` stream (CONTRACTS §9): what agents observe, fed to the policy's
triggers. Read by the consumer group `escbot`, so replicas share the work, in batches:
one Lua script per batch adds every signal to its windows and acknowledges the batch
atomically (bot/signal_windows.py), then each trigger that fired is recorded through the
service. A signal that is not valid, or from a task nobody has heard of, is recorded as
rejected (with why) and never stops the reader.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import redis
from pydantic import ValidationError

from bot.contracts import SignalEntry
from bot.core import EscalationService
from bot.errors import InvalidId
from bot.ids import agent_target
from bot.keys import KeyNames
from bot.signal_windows import Fired, Observation, SignalWindows
from bot.streams import GROUP, Entry, StreamConsumer
from bot.validation import one_line

log = logging.getLogger(__name__)
STREAM = "agent-signals"
FIRING_THREADS = 4


class SignalReader(StreamConsumer):
    name = "signals"

    def __init__(
        self, client: redis.Redis, keys: KeyNames, service: EscalationService, **options: Any
    ) -> None:
        options.setdefault("batch", 200)
        super().__init__(client, keys.signals, **options)
        self.service = service
        self.windows = SignalWindows(client, keys)
        self._unnamed: set[str] = set()
        self._firing = ThreadPoolExecutor(FIRING_THREADS, thread_name_prefix="trigger")
        self._in_flight: set[Future[None]] = set()

    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        self.dispatch_batch([Entry(entry_id, fields, deliveries)])
        return False  # acknowledged by dispatch_batch already

    def dispatch_batch(self, batch: list[Entry]) -> None:
        valid: list[tuple[Entry, SignalEntry]] = []
        rejected: list[tuple[Entry, str]] = []
        for entry in batch:
            try:
                valid.append((entry, SignalEntry.model_validate(entry.fields)))
            except ValidationError as exc:
                rejected.append((entry, f"invalid signal: {one_line(exc)}"))
        unknown = self._unknown([signal.task_id for _entry, signal in valid])
        observations: list[Observation] = []
        for entry, signal in valid:
            if signal.task_id in unknown:
                rejected.append(
                    (
                        entry,
                        f"unknown task {signal.task_id!r}: never seen (no guard, no escalation)",
                    )
                )
                continue
            observations += self._observations(signal)
        for entry, reason in rejected:
            self.service.record_rejected_entry(
                entry.id, json.dumps(entry.fields, ensure_ascii=False), reason, stream=STREAM
            )
            log.warning("signals: rejected %s: %s", entry.id, reason)
        now = self.service.clock()
        fired = self.windows.apply(
            self.stream, GROUP, observations, [entry.id for entry in batch], now
        )
        for firing in fired:
            # Recorded beside the reading, not in its way: the claim in Redis is made, and a
            # firing whose recording fails is retried from it by the sweep.
            future = self._firing.submit(self._fire, firing)
            self._in_flight.add(future)
            future.add_done_callback(self._in_flight.discard)

    def _fire(self, fired: Fired) -> None:
        try:
            self.service.fire_trigger(fired)
        except Exception:
            log.exception(
                "signals: trigger %s for %s not recorded yet; the sweep retries it",
                fired.trigger,
                fired.subject,
            )

    def wait_for_firings(self, timeout: float = 30.0) -> None:
        """Until the firings handed over so far are recorded (for callers that must know)."""
        wait(list(self._in_flight), timeout=timeout)

    def _unknown(self, task_ids: list[str]) -> set[str]:
        """Tasks that no guard reported in the last 24 h and the store has never heard of."""
        distinct = sorted(set(task_ids))
        seen = self.service.fleet.seen(distinct, self.service.clock())
        return {task for task in distinct if task not in seen and not self.service.knows(task)}

    def _observations(self, signal: SignalEntry) -> list[Observation]:
        found = []
        for trigger in self.service.policy.triggers_of(signal.signal):
            subject = signal.task_id
            if trigger.scope == "agent":
                try:
                    subject = agent_target(signal.agent)
                except InvalidId:
                    if signal.agent not in self._unnamed:
                        self._unnamed.add(signal.agent)
                        log.warning(
                            "signals: trigger %s (scope agent) skips agent %r: agent-wide stops "
                            "need a name of letters, digits and . _ : - (at most 128)",
                            trigger.name,
                            signal.agent,
                        )
                    continue
            found.append(
                Observation(
                    trigger=trigger,
                    subject=subject,
                    task_id=signal.task_id,
                    agent=signal.agent,
                    value=signal.value,
                    detail=signal.detail,
                )
            )
        return found
