"""Intake from the `escalations` stream: invalid entries are recorded, never blocking."""

from __future__ import annotations

import json

import redis
import sqlalchemy as sa

from bot.core import EscalationService
from bot.db.models import EscalationRow
from bot.db.store import Store
from bot.intake import GROUP, Intake
from bot.keys import KeyNames
from tests.support.factories import escalation_data


def _intake(rdb: redis.Redis, prefix: str, service: EscalationService) -> Intake:
    client = redis.Redis.from_url(
        rdb.connection_pool.connection_kwargs.get("url", "redis://127.0.0.1:6379/0"),
        decode_responses=True,
    )
    intake = Intake(client, KeyNames(prefix), service, consumer="test", block_ms=100)
    intake.ensure_group()
    return intake


def _count(store: Store) -> int:
    with store.transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(EscalationRow)) or 0


def test_invalid_entries_are_recorded_and_the_next_valid_one_is_processed(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)
    rdb.xadd(stream, {"payload": "{not json"})
    rdb.xadd(stream, {"payload": json.dumps({"reason": "no task id"})})
    rdb.xadd(stream, {"payload": json.dumps(escalation_data(task_id="bad id"))})
    rdb.xadd(stream, {"payload": json.dumps(escalation_data(tier="nowhere"))})
    rdb.xadd(stream, {"body": "wrong field"})
    rdb.xadd(stream, {"payload": "[1, 2]"})
    good = escalation_data()
    rdb.xadd(stream, {"payload": json.dumps(good)})

    while intake.poll_once(block_ms=50):
        pass

    assert _count(store) == 1
    assert service.get_escalation(good["escalation_id"]).task_id == good["task_id"]
    rejected = service.overview().rejected
    reasons = [entry.reason for entry in reversed(rejected)]
    assert len(reasons) == 6
    assert reasons[0].startswith("payload is not valid JSON")
    assert "task_id: required but missing" in reasons[1]
    assert "invalid task id 'bad id'" in reasons[2]
    assert "unknown tier 'nowhere'" in reasons[3]
    assert "no `payload` field" in reasons[4]
    assert "JSON object" in reasons[5]
    assert rejected[-1].raw == "{not json"
    assert rdb.xpending(stream, GROUP)["pending"] == 0  # every entry acknowledged


def test_the_same_escalation_twice_on_the_stream_is_one_escalation(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)
    data = escalation_data()
    rdb.xadd(stream, {"payload": json.dumps(data)})
    rdb.xadd(stream, {"payload": json.dumps(data)})
    while intake.poll_once(block_ms=50):
        pass
    assert _count(store) == 1
    assert (intake.stats.opened, intake.stats.duplicates) == (1, 1)


def test_entries_written_before_the_bot_started_are_not_lost(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    rdb.xadd(f"{prefix}escalations", {"payload": json.dumps(escalation_data())})
    intake = _intake(rdb, prefix, service)
    while intake.poll_once(block_ms=50):
        pass
    assert _count(store) == 1


def test_a_store_failure_leaves_the_entry_pending_and_it_is_retried(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)
    intake.retry_idle_ms = 0
    original = service.open_escalation
    calls = {"n": 0}

    def flaky(escalation):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))
        return original(escalation)

    service.open_escalation = flaky  # type: ignore[method-assign]
    rdb.xadd(stream, {"payload": json.dumps(escalation_data())})
    intake.poll_once(block_ms=50)
    assert _count(store) == 0
    assert rdb.xpending(stream, GROUP)["pending"] == 1
    intake.poll_once(block_ms=50)
    assert _count(store) == 1
    assert rdb.xpending(stream, GROUP)["pending"] == 0
