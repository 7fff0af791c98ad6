"""Signals and automated triggers (CONTRACTS §9) through the real reader, Redis (its Lua
windows) and both databases."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
import yaml

from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.models import RejectedEntryRow, TriggerFiring
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import parse_policy
from bot.signal_windows import Fired, SignalWindows
from bot.signals import SignalReader
from tests.conftest import OPERATOR, POLICY_YAML, StaticDirectory
from tests.test_sweep import Clock

BASE: dict[str, Any] = yaml.safe_load(POLICY_YAML)
TRIGGERS = yaml.safe_load("""
- {name: cost-spike, signal: cost, sum_over: 5m, above: 20, then: [pause, escalate]}
- {name: failing, signal: failure, count_over: 10m, at_least: 3, then: [kill]}
- {name: unsure, signal: confidence, below: 0.3, then: [escalate], severity: medium}
- {name: agent-cost, signal: agent_cost, sum_over: 1h, above: 100, scope: agent, then: [pause]}
""")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watched(
    store: Store, control: ControlPlane, directory: StaticDirectory, clock: Clock
) -> EscalationService:
    policy = parse_policy(yaml.safe_dump(BASE | {"triggers": TRIGGERS}).encode())
    return EscalationService(store, control, policy, directory=directory, clock=clock)


@pytest.fixture
def readers(
    redis_url: str, prefix: str, watched: EscalationService
) -> Iterator[Callable[[str], SignalReader]]:
    clients: list[redis.Redis] = []

    def make(consumer: str = "one") -> SignalReader:
        client = connect(redis_url)
        clients.append(client)
        reader = SignalReader(client, KeyNames(prefix), watched, consumer=consumer, block_ms=10)
        reader.ensure_group()
        return reader

    yield make
    for client in clients:
        client.close()


class Agents:
    """Agents as the reader sees them: tasks in the fleet, signals in the stream."""

    def __init__(self, rdb: redis.Redis, prefix: str, clock: Clock) -> None:
        self.rdb, self.prefix, self.clock = rdb, prefix, clock

    def running(self, *task_ids: str) -> None:
        self.rdb.zadd(f"{self.prefix}tasks", {t: self.clock.now.timestamp() for t in task_ids})

    def signal(self, task_id: str, name: str, value: object = None, agent: str = "billing") -> None:
        fields = {"task_id": task_id, "agent": agent, "signal": name, "at": "2026-11-22T03:00:00Z"}
        if value is not None:
            fields["value"] = str(value)
        self.rdb.xadd(f"{self.prefix}agent-signals", fields)

    def key(self, name: str) -> str | None:
        return self.rdb.get(f"{self.prefix}{name}")


@pytest.fixture
def agents(rdb: redis.Redis, prefix: str, clock: Clock) -> Agents:
    return Agents(rdb, prefix, clock)


def drain(reader: SignalReader) -> None:
    while reader.poll_once(block_ms=10):
        pass
    reader.wait_for_firings()


def firings(store: Store) -> list[tuple[str, str, bool]]:
    with store.reading() as session:
        rows = session.execute(
            sa.select(TriggerFiring.trigger, TriggerFiring.subject, TriggerFiring.active)
        )
        return sorted((r.trigger, r.subject, r.active) for r in rows)


def test_a_sum_fires_above_its_threshold_and_not_at_it(
    readers: Callable[[str], SignalReader], agents: Agents, watched: EscalationService, store: Store
) -> None:
    reader = readers("one")
    agents.running("t1")
    for value in (5, 10, 5):  # 20: not above 20
        agents.signal("t1", "cost", value)
    drain(reader)
    assert agents.key("pause:t1") is None and firings(store) == []
    agents.signal("t1", "cost", 0.5)
    drain(reader)
    pause = json.loads(agents.key("pause:t1") or "{}")
    assert pause["by"] == "policy" and "cost summed over 5m is 20.5, above 20" in pause["reason"]
    assert firings(store) == [("cost-spike", "t1", True)]
    [escalation] = watched.status("t1").escalations
    assert escalation.kind == "exception" and escalation.severity == "high"
    assert escalation.context["trigger"]["trigger"] == "cost-spike"
    assert escalation.context["trigger"]["window"] == "5m"
    assert "Trigger cost-spike: cost summed over 5m is 20.5" in escalation.reason


def test_a_count_fires_at_least_and_kills(
    readers: Callable[[str], SignalReader], agents: Agents, store: Store
) -> None:
    reader = readers("one")
    agents.running("t2")
    agents.signal("t2", "failure")
    agents.signal("t2", "failure")
    drain(reader)
    assert agents.key("kill:t2") is None
    agents.signal("t2", "failure")
    drain(reader)
    assert json.loads(agents.key("kill:t2") or "{}")["by"] == "policy"
    assert firings(store) == [("failing", "t2", True)]


def test_a_single_value_fires_below_and_only_escalates(
    readers: Callable[[str], SignalReader], agents: Agents, watched: EscalationService
) -> None:
    reader = readers("one")
    agents.running("t3")
    agents.signal("t3", "confidence", 0.3)
    drain(reader)
    assert watched.status("t3").escalations == ()  # 0.3 is not below 0.3
    agents.signal("t3", "confidence", 0.29)
    drain(reader)
    [escalation] = watched.status("t3").escalations
    assert escalation.severity == "medium" and agents.key("pause:t3") is None


def test_windows_slide_and_old_values_leave(
    readers: Callable[[str], SignalReader], agents: Agents, clock: Clock, store: Store
) -> None:
    reader = readers("one")
    agents.running("t4")
    agents.signal("t4", "failure")
    agents.signal("t4", "failure")
    drain(reader)
    clock.advance(minutes=11)  # the two leave the 10 minute window
    agents.running("t4")
    agents.signal("t4", "failure")
    drain(reader)
    assert agents.key("kill:t4") is None and firings(store) == []


def test_scope_agent_sums_across_tasks_and_pauses_the_agent(
    readers: Callable[[str], SignalReader], agents: Agents, store: Store
) -> None:
    reader = readers("one")
    agents.running("a1", "a2", "a3")
    for task in ("a1", "a2", "a3"):
        agents.signal(task, "agent_cost", 40)
    drain(reader)
    assert json.loads(agents.key("pause:agent:billing") or "{}")["by"] == "policy"
    assert agents.key("pause:a1") is None
    assert firings(store) == [("agent-cost", "agent:billing", True)]


def test_two_replicas_on_one_stream_fire_once(
    readers: Callable[[str], SignalReader], agents: Agents, store: Store
) -> None:
    first, second = readers("one"), readers("two")
    agents.running("t5")
    for _ in range(40):
        agents.signal("t5", "cost", 1)
    while first.poll_once(block_ms=10) + second.poll_once(block_ms=10):
        pass
    first.wait_for_firings()
    second.wait_for_firings()
    assert firings(store) == [("cost-spike", "t5", True)]


def test_a_reader_that_died_mid_batch_counts_nothing_twice(
    readers: Callable[[str], SignalReader],
    agents: Agents,
    store: Store,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    agents.running("t6")
    for value in (10, 10):
        agents.signal("t6", "cost", value)
    dead = readers("dead")
    # It reads the entries (they are now its pending ones) and dies before applying them.
    rdb.xreadgroup("escbot", "dead", {f"{prefix}agent-signals": ">"}, count=10)
    survivor = readers("alive")
    survivor.retry_idle_ms = 0  # claim the dead reader's entries at once
    survivor._last_retry = 0
    drain(survivor)
    drain(survivor)  # a second pass finds nothing pending: each entry was counted once
    assert agents.key("pause:t6") is None  # 20: not above 20
    agents.signal("t6", "cost", 1)
    drain(survivor)
    assert agents.key("pause:t6") is not None
    assert dead.client.xpending(f"{prefix}agent-signals", "escbot")["pending"] == 0


def test_a_trigger_fires_once_until_what_it_did_is_lifted(
    readers: Callable[[str], SignalReader],
    agents: Agents,
    watched: EscalationService,
    store: Store,
) -> None:
    reader = readers("one")
    agents.running("t7")
    agents.signal("t7", "cost", 25)
    drain(reader)
    agents.signal("t7", "cost", 25)
    drain(reader)
    assert len(watched.status("t7").escalations) == 1  # once
    watched.resume("t7", OPERATOR)
    assert firings(store) == [("cost-spike", "t7", False)]
    agents.signal("t7", "cost", 5)  # the window starts empty again: 5 is not above 20
    drain(reader)
    assert agents.key("pause:t7") is None
    agents.signal("t7", "cost", 25)
    drain(reader)
    assert agents.key("pause:t7") is not None and len(watched.status("t7").escalations) == 2


def test_an_escalate_only_trigger_fires_again_once_its_escalation_is_decided(
    readers: Callable[[str], SignalReader], agents: Agents, watched: EscalationService
) -> None:
    reader = readers("one")
    agents.running("t8")
    agents.signal("t8", "confidence", 0.1)
    agents.signal("t8", "confidence", 0.1)
    drain(reader)
    [first] = watched.status("t8").escalations
    watched.decide(first.id, OPERATOR, "approve")
    agents.signal("t8", "confidence", 0.1)
    drain(reader)
    assert len(watched.status("t8").escalations) == 2


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"task_id": "t9", "agent": "a", "signal": "cost", "value": "lots"}, "valid number"),
        ({"task_id": "t9", "agent": "a", "signal": "cost", "value": "nan"}, "finite number"),
        ({"task_id": "nobody-knows", "agent": "a", "signal": "cost"}, "unknown task"),
        ({"task_id": "t9", "agent": "a", "signal": "cost", "detail": "x" * 3000}, "at most 2000"),
        ({"task_id": "t9", "signal": "cost"}, "agent: required"),
        ({"task_id": "agent:x", "agent": "a", "signal": "cost"}, "reserved"),
        ({"task_id": "t9", "agent": "a", "signal": "no spaces"}, "signal"),
    ],
)
def test_a_bad_signal_is_recorded_as_rejected_and_the_reader_goes_on(
    readers: Callable[[str], SignalReader],
    agents: Agents,
    store: Store,
    rdb: redis.Redis,
    prefix: str,
    fields: dict[str, str],
    needle: str,
) -> None:
    reader = readers("one")
    agents.running("t9")
    rdb.xadd(f"{prefix}agent-signals", fields)
    agents.signal("t9", "cost", 30)
    drain(reader)
    with store.reading() as session:
        [row] = session.execute(sa.select(RejectedEntryRow.stream, RejectedEntryRow.reason))
    assert row.stream == "agent-signals" and needle in row.reason, row.reason
    assert agents.key("pause:t9") is not None  # the good one behind it was handled
    assert rdb.xpending(f"{prefix}agent-signals", "escbot")["pending"] == 0


def test_a_firing_left_pending_is_recorded_by_the_sweep(
    watched: EscalationService, agents: Agents, clock: Clock, rdb: redis.Redis, prefix: str
) -> None:
    agents.running("t10")
    windows = SignalWindows(rdb, KeyNames(prefix))
    payload = json.dumps({"task_id": "t10", "agent": "billing", "detail": ""})
    marker = f"pending|{int(clock.now.timestamp() * 1000)}|25|{payload}"
    rdb.set(f"{prefix}trigger:cost-spike:t10:fired", marker)
    rdb.sadd(f"{prefix}triggers:pending", "cost-spike|t10")
    assert watched.recover_firings(windows) == 0  # too fresh: its reader may be recording it
    clock.advance(seconds=6)
    assert watched.recover_firings(windows) == 1
    assert agents.key("pause:t10") is not None
    assert rdb.smembers(f"{prefix}triggers:pending") == set()
    assert watched.fire_trigger(Fired("cost-spike", "t10", "t10", "billing", 25.0, "")) is None


def test_a_trigger_removed_from_the_policy_fires_nothing(
    watched: EscalationService, agents: Agents
) -> None:
    agents.running("t11")
    assert watched.fire_trigger(Fired("gone", "t11", "t11", "billing", 1.0, "")) is None
    assert agents.key("pause:t11") is None
