"""Tiers on a schedule, through the service with a clock the test moves."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.models import CardRow, EscalationRow
from bot.db.store import Store
from bot.policy import parse_policy
from tests.conftest import OPERATOR, POLICY_YAML
from tests.support.factories import escalation


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sweeper(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: Clock
) -> EscalationService:
    return make_service(control, clock=clock, paging=True)


def cards(store: Store, escalation_id: str) -> list[tuple[str, str, bool]]:
    with store.transaction() as session:
        rows = session.scalars(
            sa.select(CardRow).where(CardRow.escalation_id == escalation_id).order_by(CardRow.id)
        )
        return [(row.tier, row.channel, row.superseded) for row in rows]


def actions(store: Store, escalation_id: str) -> list[tuple[str, str]]:
    with store.transaction() as session:
        return [
            (r.actor, r.action)
            for r in audit.iter_records(session)
            if r.escalation_id == escalation_id
        ]


def test_unacknowledged_escalations_climb_tier_by_tier_then_expire(
    sweeper: EscalationService, store: Store, clock: Clock, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = sweeper.open_escalation(escalation())
    clock.advance(minutes=4, seconds=59)
    assert sweeper.escalate_due().climbed == ()
    clock.advance(seconds=1)
    assert sweeper.escalate_due().climbed == (view.id,)
    now = sweeper.get_escalation(view.id)
    assert now.tier == "review" and now.next_action_at == clock.now + timedelta(minutes=15)
    assert cards(store, view.id) == [("triage", "C0TRIAGE", True), ("review", "C0REVIEW", False)]
    assert now.page_wanted is None  # review does not page
    clock.advance(minutes=15)
    sweeper.escalate_due()
    paged = sweeper.get_escalation(view.id)
    assert paged.tier == "incident" and paged.page_wanted == "trigger"
    clock.advance(minutes=30)
    assert sweeper.escalate_due().expired == (view.id,)
    final = sweeper.get_escalation(view.id)
    assert final.state == "expired" and final.decided_by == "policy"
    assert final.page_wanted == "resolve"
    decision = json.loads(rdb.get(f"{prefix}decision:{view.id}") or "{}")
    assert decision["decision"] == "expired" and decision["by"] == "policy"
    assert actions(store, view.id) == [
        ("policy", "escalate"),
        ("policy", "escalate"),
        ("policy", "expire"),
    ]
    clock.advance(hours=5)
    assert sweeper.escalate_due().climbed == ()  # nothing more to do for it
    with store.transaction() as session:
        assert audit.verify(session).ok


def test_acknowledge_stops_the_climb_and_a_decision_ends_it(
    sweeper: EscalationService, clock: Clock
) -> None:
    acked, _ = sweeper.open_escalation(escalation())
    decided, _ = sweeper.open_escalation(escalation())
    sweeper.acknowledge(acked.id, OPERATOR)
    sweeper.decide(decided.id, OPERATOR, "approve")
    clock.advance(hours=2)
    assert sweeper.escalate_due() == type(sweeper.escalate_due())()
    assert sweeper.get_escalation(acked.id).tier == "triage"


@pytest.mark.parametrize(
    ("final", "decision", "killed"),
    [("reject", "expired", False), ("terminate", "expired", True), ("none", None, False)],
)
def test_the_last_tier_applies_on_final_timeout_as_expired(
    store: Store,
    control: ControlPlane,
    clock: Clock,
    rdb: redis.Redis,
    prefix: str,
    final: str,
    decision: str | None,
    killed: bool,
) -> None:
    policy = parse_policy(
        POLICY_YAML.replace("on_final_timeout: reject", f"on_final_timeout: {final}").encode()
    )
    service = EscalationService(store, control, policy, clock=clock)
    view, _ = service.open_escalation(escalation(tier="incident"))
    clock.advance(minutes=31)
    service.escalate_due()
    assert service.get_escalation(view.id).state == "expired"  # never "rejected"
    stored = rdb.get(f"{prefix}decision:{view.id}")
    assert (json.loads(stored)["decision"] if stored else None) == decision
    assert bool(rdb.exists(f"{prefix}kill:{view.task_id}")) is killed


def test_paging_follows_acknowledge_and_decision_only_once_paged(
    sweeper: EscalationService, clock: Clock
) -> None:
    paged, _ = sweeper.open_escalation(escalation(tier="incident"))
    quiet, _ = sweeper.open_escalation(escalation())
    assert sweeper.get_escalation(paged.id).page_wanted == "trigger"  # starting there pages
    sweeper.acknowledge(paged.id, OPERATOR)
    assert sweeper.get_escalation(paged.id).page_wanted == "acknowledge"
    sweeper.decide(paged.id, OPERATOR, "approve")
    assert sweeper.get_escalation(paged.id).page_wanted == "resolve"
    sweeper.decide(quiet.id, OPERATOR, "approve")
    assert sweeper.get_escalation(quiet.id).page_wanted is None


def test_without_a_routing_key_the_paging_tier_only_posts_its_card(
    make_service: Callable[..., EscalationService],
    control: ControlPlane,
    clock: Clock,
    store: Store,
) -> None:
    service = make_service(control, clock=clock)  # paging off
    view, _ = service.open_escalation(escalation(tier="review"))
    clock.advance(minutes=15)
    service.escalate_due()
    assert service.get_escalation(view.id).page_wanted is None
    assert cards(store, view.id)[-1][:2] == ("incident", "C0INCIDENT")


def test_concurrent_sweeps_climb_each_escalation_once(
    make_service: Callable[..., EscalationService],
    control: ControlPlane,
    clock: Clock,
    store: Store,
) -> None:
    services = [make_service(control, clock=clock, paging=True) for _ in range(4)]
    opened = [services[0].open_escalation(escalation())[0].id for _ in range(40)]
    clock.advance(minutes=5)
    barrier = threading.Barrier(4)
    climbed: list[str] = []

    def sweep(service: EscalationService, owner: str) -> None:
        barrier.wait()
        climbed.extend(service.escalate_due(owner=owner, limit=15).climbed)
        climbed.extend(service.escalate_due(owner=owner, limit=15).climbed)

    threads = [
        threading.Thread(target=sweep, args=(service, f"replica-{i}"))
        for i, service in enumerate(services)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(climbed) == sorted(opened)
    with store.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CardRow)) == 80
        rows = session.scalars(sa.select(EscalationRow)).all()
        assert {row.tier for row in rows} == {"review"}
        assert audit.verify(session).ok
