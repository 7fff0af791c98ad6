"""Intake from the `escalations` stream: invalid entries are recorded, never blocking."""

from __future__ import annotations

import json

import pytest
import redis
import sqlalchemy as sa

from bot.core import EscalationService
from bot.core.intake_batch import Opened
from bot.db import bulk
from bot.db.models import EscalationRow
from bot.db.store import Store
from bot.intake import GROUP, Intake
from bot.keys import KeyNames
from bot.validation import load_json, nested_deeper_than
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
    original = service.open_escalations
    calls = {"n": 0}

    def flaky(batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            down = sa.exc.OperationalError("INSERT", {}, Exception("database is down"))
            return [Opened(error=down) for _ in batch]
        return original(batch)

    service.open_escalations = flaky  # type: ignore[method-assign]
    rdb.xadd(stream, {"payload": json.dumps(escalation_data())})
    intake.poll_once(block_ms=50)
    assert _count(store) == 0
    assert rdb.xpending(stream, GROUP)["pending"] == 1
    intake.poll_once(block_ms=50)
    assert _count(store) == 1
    assert rdb.xpending(stream, GROUP)["pending"] == 0


def test_hostile_payloads_are_rejected_on_first_delivery_with_a_readable_reason(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    """Nothing that can never be valid is retried: each is rejected at once, and the
    entry behind them is processed in the same pass."""
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)
    deep_state = '{"a":' * 10_000 + "1" + "}" * 10_000
    hostile = [
        "[" * 10_000 + "]" * 10_000,
        json.dumps(escalation_data(context={"state": {}})).replace('{"state": {}}', deep_state),
        json.dumps(escalation_data(action={"name": "x", "args": {"v": float("nan")}})),
        json.dumps(escalation_data()).replace("0.62", "1e400"),
        json.dumps(escalation_data(reason="half\u0000way")),
        '{"task_id": "t\x00", "reason": "NUL in the raw text"}',
    ]
    for payload in hostile:
        rdb.xadd(stream, {"payload": payload})
    good = escalation_data()
    rdb.xadd(stream, {"payload": json.dumps(good)})

    intake.poll_once(block_ms=50)  # one pass: every entry delivered once

    assert rdb.xpending(stream, GROUP)["pending"] == 0  # none left for a retry
    assert service.get_escalation(good["escalation_id"]).task_id == good["task_id"]
    reasons = [entry.reason for entry in reversed(service.overview().rejected)]
    assert reasons == [
        "payload nested deeper than 64 levels",
        "payload nested deeper than 64 levels",
        "payload is not valid JSON: NaN is not a JSON number",
        "payload is not valid JSON: the number 1e400 is out of range",
        "invalid escalation: reason: must not contain NUL characters",
        "payload is not valid JSON: Invalid control character at position 14",
    ]
    assert "\x00" not in service.overview().rejected[0].raw  # stored as its escape
    assert intake.stats.rejected == len(hostile) and intake.stats.opened == 1


def test_nesting_is_bounded_at_64_levels() -> None:
    assert load_json("[" * 64 + "]" * 64) is not None
    with pytest.raises(ValueError, match=r"^payload nested deeper than 64 levels$"):
        load_json("[" * 65 + "]" * 65)
    with pytest.raises(ValueError, match="nested deeper than 64"):
        load_json('{"a": ' * 65 + "0" + "}" * 65)
    assert not nested_deeper_than({"a": [{"b": [1, 2]}]}, 4)
    assert nested_deeper_than({"a": [{"b": [[]]}]}, 4)


def test_a_recursion_error_anywhere_is_rejected_not_retried(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)

    def overflowing(batch):  # type: ignore[no-untyped-def]
        return [Opened(error=RecursionError("maximum recursion depth exceeded")) for _ in batch]

    service.open_escalations = overflowing  # type: ignore[method-assign]
    rdb.xadd(stream, {"payload": json.dumps(escalation_data())})
    intake.poll_once(block_ms=50)
    assert rdb.xpending(stream, GROUP)["pending"] == 0
    [rejected] = service.overview().rejected
    assert rejected.reason == "payload too deeply nested to process (64 levels at most)"


def test_entries_read_together_are_stored_in_one_batch_each_once(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)
    entries = [escalation_data() for _ in range(30)]
    entries.append(dict(entries[0]))  # the same escalation again, in the same batch
    for entry in entries:
        rdb.xadd(stream, {"payload": json.dumps(entry)})
    stored: list[int] = []
    original = service._store_batch

    def counting(staged):  # type: ignore[no-untyped-def]
        stored.append(len(staged))
        return original(staged)

    service._store_batch = counting  # type: ignore[method-assign]
    intake.poll_once(block_ms=50)
    assert stored == [30]  # one transaction for the batch
    assert _count(store) == 30
    assert (intake.stats.opened, intake.stats.duplicates) == (30, 1)
    assert rdb.xpending(stream, GROUP)["pending"] == 0
    for entry in entries[:5]:  # again, after a restart: found, not opened twice
        rdb.xadd(stream, {"payload": json.dumps(entry)})
    intake.poll_once(block_ms=50)
    assert _count(store) == 30 and intake.stats.duplicates == 6


def test_an_entry_the_database_refuses_does_not_cost_the_batch_the_others(
    service: EscalationService,
    store: Store,
    rdb: redis.Redis,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = f"{prefix}escalations"
    intake = _intake(rdb, prefix, service)
    good = [escalation_data() for _ in range(4)]
    bad = escalation_data()
    original = bulk.insert_many

    def refusing(session, news):  # type: ignore[no-untyped-def]
        # The database refuses one value (as PostgreSQL refuses a string too long).
        if any(new.id == bad["escalation_id"] for new in news):
            raise sa.exc.DataError("INSERT", {}, Exception("value too long for type"))
        return original(session, news)

    monkeypatch.setattr(bulk, "insert_many", refusing)
    for entry in [good[0], good[1], bad, good[2], good[3]]:
        rdb.xadd(stream, {"payload": json.dumps(entry)})
    intake.poll_once(block_ms=50)
    for entry in good:
        assert service.get_escalation(entry["escalation_id"]).task_id == entry["task_id"]
    assert _count(store) == 4
    [rejected] = service.overview().rejected
    assert rejected.reason == "payload cannot be stored: value too long for type"
    assert rdb.xpending(stream, GROUP)["pending"] == 0
