"""The pager: the paging outbox sent through the ``pagerduty`` client to a fake Events API v2
over HTTPS, trusted through the test CA the standard way (SSL_CERT_FILE, REQUESTS_CA_BUNDLE)."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from bot.pager import Pager, ca_file_from, summary
from bot.records import CardRecord
from tests.conftest import OPERATOR
from tests.support.cli import Cli
from tests.support.factories import escalation
from tests.support.fake_pagerduty import FakePagerDuty
from tests.test_sweep import Clock

ROUTING_KEY = "R0UTINGKEY0123456789ABCDEFGHIJKL"


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakePagerDuty]:
    with FakePagerDuty(routing_keys={ROUTING_KEY}) as fake:
        for name, value in fake.trust_env(tmp_path).items():
            monkeypatch.setenv(name, value)
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
def pager(paging: EscalationService, pagerduty: FakePagerDuty) -> Iterator[Pager]:
    pager = Pager(paging, ROUTING_KEY, pagerduty.url)
    yield pager
    pager.close()


def page_rows(store: Store, escalation_id: str) -> list[dict]:
    with store.transaction() as session:
        return [
            r.as_json()
            for r in audit.iter_records(session)
            if r.escalation_id == escalation_id and r.action == "page"
        ]


def test_building_the_pager_and_paging_warns_no_one(
    paging: EscalationService, pagerduty: FakePagerDuty
) -> None:
    paging.open_escalation(escalation(tier="incident"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pager = Pager(paging, ROUTING_KEY, pagerduty.url)
        try:
            assert pager.tick() == 1
        finally:
            pager.close()
    assert [e.status for e in pagerduty.events()] == [202]


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


def test_the_trigger_links_the_card_and_carries_what_the_fake_validates(
    paging: EscalationService, pager: Pager, pagerduty: FakePagerDuty
) -> None:
    view, _ = paging.open_escalation(escalation(tier="incident", severity="low"))
    [job] = paging.claim_pages()
    cards = (
        CardRecord(
            "review", "C0REVIEW", "1.1", "https://slack.test/archives/C0REVIEW/p1", True, None
        ),
        CardRecord(
            "incident", "C0INCIDENT", "2.2", "https://slack.test/archives/C0INC/p2", False, None
        ),
    )
    pager.send(replace(job, escalation=replace(job.escalation, cards=cards)))
    [event] = pagerduty.events("trigger")
    assert event.accepted, event.response
    assert event.body["routing_key"] == ROUTING_KEY and event.body["event_action"] == "trigger"
    assert event.body["dedup_key"] == view.id
    assert set(event.body["payload"]) == {"summary", "source", "severity", "custom_details"}
    assert event.body["payload"]["severity"] == "info"
    assert event.body["links"] == [
        {
            "href": "https://slack.test/archives/C0INC/p2",
            "text": "Escalation card in Slack (incident)",
        }
    ]
    assert pagerduty.incident(view.id).links == event.body["links"]


def test_the_ca_bundle_comes_from_ssl_cert_file_then_requests_ca_bundle() -> None:
    assert ca_file_from({"SSL_CERT_FILE": "/a.pem", "REQUESTS_CA_BUNDLE": "/b.pem"}) == Path(
        "/a.pem"
    )
    assert ca_file_from({"SSL_CERT_FILE": " ", "REQUESTS_CA_BUNDLE": "/b.pem"}) == Path("/b.pem")
    assert ca_file_from({}) is None


def test_requests_ca_bundle_alone_is_trusted(
    paging: EscalationService, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    view, _ = paging.open_escalation(escalation(tier="incident"))
    pager = Pager(paging, ROUTING_KEY, pagerduty.url)
    try:
        assert pager.tick() == 1
    finally:
        pager.close()
    assert pagerduty.incident(view.id).state == "triggered"


def test_an_untrusted_certificate_is_a_failure_kept_for_a_retry(
    paging: EscalationService,
    pagerduty: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    tmp_path: Path,
) -> None:
    view, _ = paging.open_escalation(escalation(tier="incident"))
    untrusted = Pager(paging, ROUTING_KEY, pagerduty.url, ca_file=Path(requests.certs.where()))
    try:
        assert untrusted.tick() == 0
    finally:
        untrusted.close()
    error = paging.get_escalation(view.id).page_error
    assert error and "CERTIFICATE_VERIFY_FAILED" in error and "\n" not in error
    assert pagerduty.events() == []
    clock.advance(minutes=2)  # past the backoff
    trusted = Pager(paging, ROUTING_KEY, pagerduty.url, ca_file=tmp_path / "fake-pagerduty-ca.pem")
    try:
        assert trusted.tick() == 1
    finally:
        trusted.close()
    assert pagerduty.incident(view.id).state == "triggered"


@pytest.mark.timeout(30)  # the client's own default would wait a minute
def test_a_pagerduty_that_never_answers_times_out_and_is_retried_later(
    paging: EscalationService, pagerduty: FakePagerDuty
) -> None:
    view, _ = paging.open_escalation(escalation(tier="incident"))
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never shakes hands
        port = silent.getsockname()[1]
        pager = Pager(paging, ROUTING_KEY, f"https://127.0.0.1:{port}", timeout=1)
        try:
            assert pager.tick() == 0
        finally:
            pager.close()
    error = paging.get_escalation(view.id).page_error
    assert error and "Timeout" in error.split(":")[0], error


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9"},
            "PAGERDUTY_EVENTS_URL: must be an https://",
        ),
        ({"SSL_CERT_FILE": "/nowhere/ca.pem"}, "SSL_CERT_FILE: cannot read /nowhere/ca.pem"),
        ({"REQUESTS_CA_BUNDLE": "/dev/null"}, "REQUESTS_CA_BUNDLE: /dev/null holds no PEM"),
    ],
)
def test_a_bad_pagerduty_url_or_ca_bundle_stops_serve_in_one_line(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    ran = Cli(tmp_path, {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY})("serve", "--http", **env)
    assert ran.code == 2, (ran.code, ran.err)
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in ran.err, ran.err
