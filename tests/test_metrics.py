"""Prometheus metrics through the real service, Redis and both databases: each event
counted once, by the replica that did it; gauges read from the shared state, equal on
every replica; histogram buckets; label values folded at the limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.errors import AlreadyDecided
from bot.keys import KeyNames
from bot.metrics import OTHER, ServiceMetrics, StateGauges
from bot.policy import Policy, parse_policy
from bot.signal_windows import Fired
from tests.conftest import OPERATOR, POLICY_YAML, StaticDirectory
from tests.support.factories import escalation
from tests.test_sweep import Clock

POLICY: dict[str, Any] = yaml.safe_load(POLICY_YAML) | {
    "actions": {"auto_refund": {"decide": "auto"}, "*": {"decide": "approve"}},
    "stages": {"refund": "broad"},
    "reviews": {"support-reply": 1.0},
    "triggers": [{"name": "cost-spike", "signal": "cost", "above": 20, "then": ["pause"]}],
}


class Replica:
    """One `escbot serve`'s service and metrics, in this process."""

    def __init__(self, store: Store, control: ControlPlane, policy: Policy, clock: Clock) -> None:
        self.metrics = ServiceMetrics(label_limit=3)
        self.service = EscalationService(
            store,
            control,
            policy,
            directory=StaticDirectory({}),
            clock=clock,
            listeners=[self.metrics],
            paging=True,
        )
        self.metrics.registry.register(
            StateGauges(
                store, control.client, control.keys, lambda: policy, clock=clock, cache_seconds=0
            )
        )

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replicas(
    store: Store, redis_url: str, prefix: str, clock: Clock
) -> Iterator[tuple[Replica, Replica]]:
    policy = parse_policy(yaml.safe_dump(POLICY).encode())
    clients = [connect(redis_url), connect(redis_url)]
    yield (
        Replica(store, ControlPlane(clients[0], KeyNames(prefix)), policy, clock),
        Replica(store, ControlPlane(clients[1], KeyNames(prefix)), policy, clock),
    )
    for client in clients:
        client.close()


def test_each_event_is_counted_once_by_the_replica_that_did_it(
    replicas: tuple[Replica, Replica], clock: Clock
) -> None:
    a, b = replicas
    first, _ = a.service.open_escalation(escalation(severity="high"))
    a.service.open_escalation(escalation(severity="low", kind="exception", action=None))
    second, _ = b.service.open_escalation(escalation(severity="high"))
    b.service.open_escalation(escalation(action={"name": "auto_refund", "args": {}}))
    a.service.open_escalation(escalation(escalation_id=first.id))  # the same id: no new one

    clock.advance(seconds=20)
    a.service.acknowledge(first.id, OPERATOR)
    clock.advance(seconds=20)
    b.service.decide(first.id, OPERATOR, "approve")
    with pytest.raises(AlreadyDecided):
        a.service.decide(first.id, OPERATOR, "reject", comment="late")
    a.service.decide(second.id, OPERATOR, "reject", comment="no")
    a.service.kill("t-1", OPERATOR, "runaway")
    b.service.pause("t-2", OPERATOR, "look")
    b.service.resume("t-2", OPERATOR)
    b.service.fire_trigger(Fired("cost-spike", "t-3", "t-3", "billing-agent", 25.0, ""))
    assert a.service.task_finished("t-4", "support", task_type="support-reply")
    [review] = a.service.overview().reviews
    b.service.review(review.id, OPERATOR, "flagged", note="wrong tone")

    opened = "escbot_escalations_total"
    assert a.value(opened, task_type="refund", severity="high", kind="approval") == 1
    assert a.value(opened, task_type="refund", severity="low", kind="exception") == 1
    assert b.value(opened, task_type="refund", severity="high", kind="approval") == 2
    assert a.value("escbot_decisions_total", decision="approved", by="human") == 0
    assert b.value("escbot_decisions_total", decision="approved", by="human") == 1
    assert b.value("escbot_decisions_total", decision="approved", by="policy") == 1
    assert a.value("escbot_decisions_total", decision="rejected", by="human") == 1
    assert a.value("escbot_time_to_ack_seconds_count", task_type="refund", severity="high") == 1
    assert b.value("escbot_time_to_ack_seconds_count", task_type="refund", severity="high") == 0
    assert b.value("escbot_time_to_decision_seconds_sum", task_type="refund", severity="high") == 40
    assert a.value("escbot_overrides_total", action="kill") == 1
    assert b.value("escbot_overrides_total", action="pause") == 2  # the operator's, the trigger's
    assert b.value("escbot_overrides_total", action="resume") == 1
    assert b.value("escbot_triggers_total", trigger="cost-spike") == 1
    assert a.value("escbot_triggers_total", trigger="cost-spike") == 0
    assert b.value("escbot_reviews_total", verdict="flagged") == 1
    assert a.value("escbot_reviews_total", verdict="flagged") == 0


def test_expiries_and_pages_are_counted_by_the_sweeping_replica(
    replicas: tuple[Replica, Replica], clock: Clock
) -> None:
    a, b = replicas
    opened, _ = a.service.open_escalation(escalation(severity="medium"))
    for minutes in (5, 15):  # triage, then review: the incident tier pages
        clock.advance(minutes=minutes, seconds=1)
        a.service.escalate_due()
    [job] = b.service.claim_pages()
    b.service.page_done(job)
    clock.advance(minutes=30, seconds=1)
    assert a.service.escalate_due().expired == (opened.id,)

    assert a.value("escbot_decisions_total", decision="expired", by="policy") == 1
    assert b.value("escbot_decisions_total", decision="expired", by="policy") == 0
    assert b.value("escbot_pages_total", event="trigger", result="sent") == 1
    assert a.value("escbot_pages_total", event="trigger", result="sent") == 0
    assert a.value("escbot_overrides_total", action="escalate") == 0  # a climb is no override


def test_gauges_are_read_from_the_shared_state_and_equal_on_every_replica(
    replicas: tuple[Replica, Replica], clock: Clock, control: ControlPlane
) -> None:
    a, b = replicas
    late, _ = a.service.open_escalation(escalation(severity="critical"))
    clock.advance(minutes=4)
    b.service.open_escalation(escalation(severity="critical"))
    decided, _ = b.service.open_escalation(escalation(severity="low"))
    a.service.decide(decided.id, OPERATOR, "approve")
    acked, _ = a.service.open_escalation(escalation(severity="high"))
    a.service.acknowledge(acked.id, OPERATOR)
    clock.advance(minutes=1, seconds=30)  # the first is past the triage tier's 5 minutes
    now = clock().timestamp()
    control.client.zadd(control.keys.tasks, {"live-1": now - 5, "live-2": now, "gone": now - 60})

    for replica in (a, b):
        assert replica.value("escbot_open_escalations") == 3
        # Never posted (no Slack here); the decided one's too: it goes out saying how it ended.
        assert replica.value("escbot_cards_waiting") == 4
        assert replica.value("escbot_live_tasks") == 2
        assert replica.value("escbot_open_escalations_past_sla", severity="critical") == 1
        assert replica.value("escbot_open_escalations_past_sla", severity="high") == 0
    a.service.acknowledge(late.id, OPERATOR)
    assert b.value("escbot_open_escalations_past_sla", severity="critical") == 0


def test_a_gauge_read_is_cached_for_a_second(store: Store, control: ControlPlane) -> None:
    policy = parse_policy(POLICY_YAML.encode())
    registry = CollectorRegistry()
    registry.register(StateGauges(store, control.client, control.keys, lambda: policy))
    service = EscalationService(store, control, policy)
    assert registry.get_sample_value("escbot_open_escalations") == 0
    service.open_escalation(escalation())
    assert registry.get_sample_value("escbot_open_escalations") == 0  # within the second


def test_durations_land_in_their_buckets(replicas: tuple[Replica, Replica], clock: Clock) -> None:
    a, _ = replicas
    for ack_after, decide_after in ((45, 400), (3, 4000)):
        opened, _ = a.service.open_escalation(escalation(task_type="refund", severity="high"))
        clock.advance(seconds=ack_after)
        a.service.acknowledge(opened.id, OPERATOR)
        clock.advance(seconds=decide_after - ack_after)
        a.service.decide(opened.id, OPERATOR, "terminate")

    labels = {"task_type": "refund", "severity": "high"}

    def bucket(name: str, le: str) -> float:
        return a.value(f"{name}_bucket", **labels, le=le)

    ack = "escbot_time_to_ack_seconds"
    assert [bucket(ack, le) for le in ("1.0", "5.0", "30.0", "60.0", "+Inf")] == [0, 1, 1, 2, 2]
    assert a.value(f"{ack}_sum", **labels) == 48
    decision = "escbot_time_to_decision_seconds"
    got = [bucket(decision, le) for le in ("300.0", "600.0", "3600.0", "7200.0", "+Inf")]
    assert got == [0, 1, 1, 2, 2]
    assert a.value(f"{decision}_sum", **labels) == 4400


def test_task_types_beyond_the_limit_are_counted_as_other(
    replicas: tuple[Replica, Replica],
) -> None:
    a, _ = replicas  # a limit of 3 task types
    for task_type in ("a", "b", "c", "d", "e", "a", "d"):
        a.service.open_escalation(escalation(task_type=task_type, action=None, kind="exception"))

    def count(task_type: str) -> float:
        return a.value(
            "escbot_escalations_total", task_type=task_type, severity="high", kind="exception"
        )

    assert [count(t) for t in ("a", "b", "c", OTHER)] == [2, 1, 1, 3]
    series = {
        sample.labels["task_type"]
        for family in a.metrics.registry.collect()
        if family.name == "escbot_escalations"
        for sample in family.samples
    }
    assert series == {"a", "b", "c", OTHER}


def test_escalations_stored_in_a_batch_are_counted_once_each(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    batch = [escalation(severity="critical"), escalation(severity="critical")]
    answers = a.service.open_escalations([*batch, escalation(escalation_id=batch[0].escalation_id)])
    assert [answer.created for answer in answers] == [True, True, False]
    b.service.open_escalations(batch)  # another replica reading them again: none new
    opened = "escbot_escalations_total"
    assert a.value(opened, task_type="refund", severity="critical", kind="approval") == 2
    assert b.value(opened, task_type="refund", severity="critical", kind="approval") == 0
