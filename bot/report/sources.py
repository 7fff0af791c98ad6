"""Everything `escbot report` reads, over its window: the store's escalations, recovery
rows and reviews, and from Redis the `cost` signals and the tasks agents reported
`completed` (the `outcomes` stream); streams are read from the window's start (their ids
are times), a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from bot.db import report_rows
from bot.db.report_rows import EscalationFacts, RecoveryFacts, ReviewFacts
from bot.db.store import Store
from bot.keys import KeyNames

STREAM_BATCH = 10_000


@dataclass(frozen=True)
class Completed:
    task_id: str
    agent: str
    task_type: str | None


@dataclass(frozen=True)
class ReportData:
    since: datetime
    until: datetime
    escalations: list[EscalationFacts]
    recovery: list[RecoveryFacts]
    reviews: list[ReviewFacts]
    completed: list[Completed]
    costs: dict[str, float]  # task id -> the sum of its `cost` signals in the window
    tasks: dict[str, tuple[str, str | None]]  # task id -> (agent, task type)


def read_report_data(
    store: Store, client: redis.Redis, keys: KeyNames, since: datetime, until: datetime
) -> ReportData:
    with store.reading() as session:
        escalations = report_rows.escalations_since(session, since)
        recovery = report_rows.recovery_since(session, since)
        reviews = report_rows.reviews_since(session, since)
    completed = list(_completed(client, keys.outcomes, since))
    costs = _costs(client, keys.signals, since)
    tasks = {e.task_id: (e.agent, e.task_type) for e in escalations}
    for done in completed:
        tasks.setdefault(done.task_id, (done.agent, done.task_type))
    unknown = {r.target for r in recovery if r.target not in tasks}
    if unknown:
        with store.reading() as session:
            tasks.update(report_rows.tasks_of(session, unknown))
    return ReportData(since, until, escalations, recovery, reviews, completed, costs, tasks)


def _entries(client: redis.Redis, stream: str, since: datetime) -> Iterator[dict[str, str]]:
    start = f"{int(since.timestamp() * 1000)}-0"
    while True:
        batch: list[Any] = client.xrange(stream, min=start, max="+", count=STREAM_BATCH) or []
        for _entry_id, fields in batch:
            yield {_text(k): _text(v) for k, v in fields.items()}
        if len(batch) < STREAM_BATCH:
            return
        start = "(" + _text(batch[-1][0])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _completed(client: redis.Redis, stream: str, since: datetime) -> Iterator[Completed]:
    seen: set[str] = set()
    for fields in _entries(client, stream, since):
        task_id = fields.get("task_id", "")
        if fields.get("status") != "completed" or fields.get("source") != "agent":
            continue
        if not task_id or task_id in seen:
            continue
        seen.add(task_id)
        yield Completed(task_id, fields.get("agent") or "unknown", fields.get("task_type") or None)


def _costs(client: redis.Redis, stream: str, since: datetime) -> dict[str, float]:
    costs: dict[str, float] = {}
    for fields in _entries(client, stream, since):
        if fields.get("signal") != "cost":
            continue
        try:
            value = float(fields.get("value") or 1)
        except ValueError:
            continue  # the reader rejected it too
        task_id = fields.get("task_id", "")
        if task_id and value == value and abs(value) != float("inf"):
            costs[task_id] = costs.get(task_id, 0.0) + value
    return costs
