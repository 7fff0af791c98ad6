"""The pager: the paging outbox sent through pdpyras to a fake Events API v2 over HTTP."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from bot.pager import Pager, summary
from tests.conftest import OPERATOR
from tests.support.factories import escalation
from tests.support.fake_pagerduty import FakePagerDuty
from tests.test_sweep import Clock

ROUTING_KEY = "R0UTINGKEY0123456789ABCDEFGHIJKL"


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty(routing_keys={ROUTING_KEY}) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def paging(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: Clock
) -> EscalationService:
    return make_service(control, clock=clock, paging=True)


@pytest.fixture
def pager(paging: EscalationService, pagerduty: FakePagerDuty) -> Pager:
    return Pager(paging, ROUTING_KEY, pagerduty.url)


def page_rows(store: Store, escalation_id: str) -> list[dict]:
    with store.transaction() as session:
        return [
            r.as_json()
            for r in audit.iter_records(session)
            if r.escalation_id == escalation_id and r.action == "page"
        ]


def test_importing_pdpyras_warns_no_one() -> None:
    from bot.pager import pdpyras_module

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdpyras_module()


def test_trigger_then_acknowledge_then_resolve(
    paging: EscalationService, pager: Pager, pagerduty: FakePagerDuty, store: Store
) -> None:
    view, _ = paging.open_escalation(
        escalation(tier="incident", severity="critical", reason="wire " * 400)
    )
    assert pager.tick() == 1
    [event] = pagerduty.events("trigger")
    body = event.body
    assert event.accepted and body["dedup_key"] == view.id
    assert body["payload"]["source"] == "billing-agent"
    assert body["payload"]["severity"] == "critical"
    assert len(body["payload"]["summary"]) <= 1024
    details = body["payload"]["custom_details"]
    assert details["escalation_id"] == view.id and details["context"]["policy_rule"]
    assert pagerduty.incident(view.id).state == "triggered"
    assert pager.tick() == 0  # nothing owed any more
    paging.acknowledge(view.id, OPERATOR)
    pager.tick()
    assert pagerduty.incident(view.id).state == "acknowledged"
    paging.decide(view.id, OPERATOR, "approve")
    pager.tick()
    assert pagerduty.incident(view.id).state == "resolved"
    assert [r["detail"]["event_action"] for r in page_rows(store, view.id)] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    card = paging.get_escalation(view.id)
    assert card.page_sent == card.page_wanted == "resolve"


def test_severity_mapping_and_summary() -> None:
    from bot.pager import SEVERITY

    assert SEVERITY == {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
    view = type("V", (), {"severity": "high", "agent": "a", "task_id": "t", "reason": "x\n" * 900})
    assert len(summary(view)) <= 1023  # type: ignore[arg-type]


def test_three_5xx_and_the_page_still_lands_once(
    paging: EscalationService,
    pager: Pager,
    pagerduty: FakePagerDuty,
    clock: Clock,
    store: Store,
) -> None:
    view, _ = paging.open_escalation(escalation(tier="incident"))
    pagerduty.fail_next(times=3, status=503)
    for _ in range(3):
        pager.tick()
        failing = paging.get_escalation(view.id)
        assert failing.page_error and "503" in failing.page_error
        clock.advance(minutes=2)  # past the backoff
    pager.tick()
    assert [e.status for e in pagerduty.events()] == [503, 503, 503, 202]
    assert len(pagerduty.incidents(view.id)) == 1
    assert paging.get_escalation(view.id).page_error is None
    rows = page_rows(store, view.id)
    assert [(r["detail"]["ok"]) for r in rows] == [False, True]  # first failure, then success


def test_a_decision_before_the_page_landed_sends_nothing(
    paging: EscalationService, pager: Pager, pagerduty: FakePagerDuty, store: Store
) -> None:
    view, _ = paging.open_escalation(escalation(tier="incident"))
    pagerduty.set_down(True)
    pager.tick()
    paging.decide(view.id, OPERATOR, "approve")
    pagerduty.set_down(False)
    pager.tick()
    assert all(e.action == "trigger" for e in pagerduty.events())
    assert pagerduty.incidents(view.id) == []


def test_expiring_before_the_page_landed_still_pages_then_resolves(
    paging: EscalationService,
    pager: Pager,
    pagerduty: FakePagerDuty,
    clock: Clock,
    store: Store,
) -> None:
    view, _ = paging.open_escalation(escalation(tier="incident"))
    pagerduty.set_down(True)
    pager.tick()
    clock.advance(minutes=31)  # the last tier runs out while PagerDuty is down
    paging.escalate_due()
    assert paging.get_escalation(view.id).state == "expired"
    pagerduty.set_down(False)
    clock.advance(minutes=2)  # past the backoff
    pager.tick()
    assert [e.action for e in pagerduty.events() if e.accepted] == ["trigger", "resolve"]
    assert pagerduty.incident(view.id).state == "resolved"
    assert [
        r["detail"]["event_action"] for r in page_rows(store, view.id) if r["detail"]["ok"]
    ] == [
        "trigger",
        "resolve",
    ]
    assert pager.tick() == 0  # nothing owed any more


def test_a_second_pager_does_not_send_what_the_first_claimed(
    paging: EscalationService, pagerduty: FakePagerDuty
) -> None:
    first = Pager(paging, ROUTING_KEY, pagerduty.url)
    second = Pager(paging, ROUTING_KEY, pagerduty.url)
    views = [paging.open_escalation(escalation(tier="incident"))[0] for _ in range(10)]
    jobs = paging.claim_pages()
    assert second.tick() == 0  # all claimed by the first
    for job in jobs:
        first.send(job)
        paging.page_done(job)
    assert sorted(e.dedup_key for e in pagerduty.events("trigger")) == sorted(v.id for v in views)


def test_a_page_claim_expires_if_its_pager_dies(
    paging: EscalationService, pager: Pager, pagerduty: FakePagerDuty, clock: Clock
) -> None:
    paging.open_escalation(escalation(tier="incident"))
    assert len(paging.claim_pages()) == 1  # claimed, then the claimer crashed
    assert pager.tick() == 0
    clock.now = clock.now + timedelta(seconds=61)
    assert pager.tick() == 1
    assert isinstance(clock.now, datetime) and clock.now.tzinfo is UTC
