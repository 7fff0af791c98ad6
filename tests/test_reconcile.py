"""Reconcile writes back what Redis lost: decisions too, for what is left of their life."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from bot.control import DECISION_TTL_SECONDS, ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from tests.conftest import OPERATOR
from tests.support.clock import ManualClock
from tests.support.factories import escalation
from tests.support.keyspace import delete_prefixed

DAY = 24 * 3600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def timed(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: ManualClock
) -> EscalationService:
    return make_service(control, clock=clock)


def test_a_flushed_decision_is_written_back_with_what_is_left_of_its_life(
    timed: EscalationService, clock: ManualClock, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    record, _ = timed.open_escalation(escalation())
    timed.decide(record.id, OPERATOR, "redirect", instruction="refund 500 instead")
    key = f"{prefix}decision:{record.id}"
    original, original_ttl = rdb.get(key), rdb.ttl(key)
    assert original_ttl > DECISION_TTL_SECONDS - 60
    timed.kill(record.task_id, OPERATOR, "while we look")
    clock.advance(days=2)

    delete_prefixed(rdb, prefix)  # Redis flushed: this test's keys are gone
    report = timed.reconcile()

    assert key in report.restored and f"{prefix}kill:{record.task_id}" in report.restored
    assert rdb.get(key) == original  # the agent waiting on it reads the same answer
    left = rdb.ttl(key)
    assert 0 < left <= original_ttl and left <= 5 * DAY  # its life ran from the decision
    assert left > 5 * DAY - 60
    with store.reading() as session:
        last = list(audit.iter_records(session))[-1]
    assert last.action == "redis_restored" and key in (last.detail or {})["restored"]
    assert not timed.reconcile().changed  # nothing lost now: nothing written


def test_decisions_past_their_keys_life_stay_gone(
    timed: EscalationService, clock: ManualClock, rdb: redis.Redis, prefix: str
) -> None:
    old, _ = timed.open_escalation(escalation())
    timed.decide(old.id, OPERATOR, "approve")
    clock.advance(days=6)
    recent, _ = timed.open_escalation(escalation())
    timed.decide(recent.id, OPERATOR, "reject", comment="no")
    clock.advance(days=1, seconds=1)  # the first decision's key would have expired by now
    delete_prefixed(rdb, prefix)

    report = timed.reconcile()

    assert report.restored == (f"{prefix}decision:{recent.id}",)
    assert not rdb.exists(f"{prefix}decision:{old.id}")
    assert json.loads(rdb.get(f"{prefix}decision:{recent.id}") or "{}")["comment"] == "no"


def test_open_escalations_and_present_keys_are_left_alone(
    timed: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    waiting, _ = timed.open_escalation(escalation())
    decided, _ = timed.open_escalation(escalation())
    timed.decide(decided.id, OPERATOR, "approve")
    key = f"{prefix}decision:{decided.id}"
    rdb.set(key, "as the agent found it", keepttl=True)

    assert not timed.reconcile().changed
    assert rdb.get(key) == "as the agent found it"  # SET NX never overwrites
    assert not rdb.exists(f"{prefix}decision:{waiting.id}")  # nothing is decided yet


def test_checking_decisions_is_one_round_trip_when_nothing_is_lost(
    timed: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    for _ in range(5):
        record, _ = timed.open_escalation(escalation())
        timed.decide(record.id, OPERATOR, "approve")
    timed.kill("refund-rt", OPERATOR)
    calls: list[tuple[int, int]] = []
    original = timed.control.ensure_and_count

    def counted(effects, present):  # type: ignore[no-untyped-def]
        calls.append((len(effects), len(present)))
        return original(effects, present)

    timed.control.ensure_and_count = counted  # type: ignore[method-assign]
    assert not timed.reconcile().changed
    assert calls == [(1, 5)]  # the kill is ensured, the five decisions only counted
