"""`escbot report`'s figures against a fixture computed by hand: escalations decided by
people (one with edited arguments), by the policy and by the clock; pauses resumed and
abandoned; reviews; cost signals and completed tasks; confidences. Through the real
service, Redis and both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from bot.cli import main as escbot
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from bot.policy import parse_policy
from bot.report import build_report, read_report_data
from bot.report.figures import Report, percentile
from bot.report.text import render_text
from tests.conftest import OPERATOR, POLICY_YAML, StaticDirectory
from tests.support.factories import escalation
from tests.test_sweep import Clock

POLICY: dict[str, Any] = yaml.safe_load(POLICY_YAML) | {
    "actions": {
        "auto_reply": {"decide": "auto", "review_sample": 1.0},
        "*": {"decide": "approve"},
    },
    "stages": {"reply": "broad"},
    "reviews": {"refund": 1.0},
}
BILLING, SUPPORT = "billing-agent", "support-agent"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(
    store: Store, control: ControlPlane, clock: Clock, directory: StaticDirectory
) -> EscalationService:
    policy = parse_policy(yaml.safe_dump(POLICY).encode())
    return EscalationService(store, control, policy, directory=directory, clock=clock)


def refund(confidence: float | None, **more: Any) -> Any:
    return escalation(agent=BILLING, task_type="refund", confidence=confidence, **more)


def reply(confidence: float | None, **more: Any) -> Any:
    return escalation(agent=SUPPORT, task_type="reply", confidence=confidence, **more)


@pytest.fixture
def fixture(
    service: EscalationService, store: Store, clock: Clock, rdb: redis.Redis, prefix: str
) -> Iterator[Report]:
    t0 = clock()
    opened = {
        name: service.open_escalation(payload)[0]
        for name, payload in {
            "e1": refund(0.65),
            "e2": refund(0.62),
            "e3": refund(0.15),
            "e4": reply(0.95, action={"name": "auto_reply", "args": {"text": "hi"}}),
            "e5": reply(0.9),
            "e6": reply(None, severity="medium", kind="exception", action=None),
            "e7": refund(0.35),
        }.items()
    }
    e = {name: record.id for name, record in opened.items()}

    def at(seconds: int) -> None:
        clock.now = t0 + timedelta(seconds=seconds)

    at(30), service.acknowledge(e["e3"], OPERATOR)
    at(60), service.acknowledge(e["e1"], OPERATOR)
    at(90), service.acknowledge(e["e7"], OPERATOR)
    at(120), service.decide(e["e3"], OPERATOR, "reject", comment="no")
    at(300), service.decide(e["e1"], OPERATOR, "approve")
    at(600), service.decide(e["e2"], OPERATOR, "approve", args={"amount": 500})
    at(900), service.decide(e["e5"], OPERATOR, "terminate")
    # Recovery: a pause resumed, one abandoned, an agent-wide one still on.
    service.pause(opened["e1"].task_id, OPERATOR, "look")
    service.resume(opened["e1"].task_id, OPERATOR)
    service.pause(opened["e5"].task_id, OPERATOR, "look")
    with store.transaction() as session:
        audit.append(
            session,
            at=clock(),
            actor=OPERATOR,
            action="abandon",
            policy_version=service.policy.version,
            task_id=opened["e5"].task_id,
            reason="abandoned: wrong customer",
        )
    service.pause(f"agent:{BILLING}", OPERATOR, "all of them")
    # Reviews: the policy's decision (sampled at 1.0) flagged, a finished refund looks right.
    assert service.task_finished("done-1", BILLING, task_type="refund")
    for review in service.overview().reviews:
        verdict = "flagged" if review.subject == "decision" else "looks_right"
        service.review(review.id, OPERATOR, verdict, note="wrong" if verdict == "flagged" else None)
    for minutes in (20, 40, 60, 80):  # e6 climbs the ladder, then expires
        at(minutes * 60)
        service.escalate_due()
    # Completed tasks and their costs (the streams agents write).
    outcomes, signals = f"{prefix}outcomes", f"{prefix}agent-signals"
    for task_id, agent, task_type, status, source in (
        ("c1", BILLING, "refund", "completed", "agent"),
        ("c2", BILLING, "refund", "completed", "agent"),
        ("c3", SUPPORT, "reply", "completed", "agent"),
        ("c4", SUPPORT, "reply", "failed", "agent"),
        ("c5", SUPPORT, "reply", "terminated", "bot"),
    ):
        rdb.xadd(
            outcomes,
            {"task_id": task_id, "agent": agent, "task_type": task_type, "status": status,
             "source": source, "at": "2026-11-22T03:00:00Z"},
        )  # fmt: skip
    for task_id, agent, signal, value in (
        ("c1", BILLING, "cost", "2.5"),
        ("c1", BILLING, "cost", "1.5"),
        ("c2", BILLING, "cost", "6"),
        ("c4", SUPPORT, "cost", "100"),  # failed: not a completed task's cost
        ("c3", SUPPORT, "failure", "1"),
    ):
        rdb.xadd(signals, {"task_id": task_id, "agent": agent, "signal": signal, "value": value})
    data = read_report_data(
        store, rdb, service.control.keys, t0 - timedelta(days=1), t0 + timedelta(days=1)
    )
    yield build_report(data)


def test_the_figures_match_the_hand_computed_fixture(fixture: Report) -> None:
    report = fixture.as_json()
    overall: Any = report["overall"]
    assert report["days"] == 2.0
    assert overall["escalations"] == 7 and overall["escalations_per_day"] == 3.5
    assert overall["time_to_ack_seconds"] == {"count": 3, "median": 60.0, "p90": 84.0}
    # People decided after 120, 300, 600 and 900 s: the policy's and the expiry do not count.
    assert overall["time_to_decision_seconds"] == {"count": 4, "median": 450.0, "p90": 810.0}
    assert overall["decided"] == 6
    assert overall["decisions"] == {
        "approved": 2, "edited": 1, "rejected": 1, "terminated": 1, "redirected": 0,
        "expired": 1,
    }  # fmt: skip
    assert overall["shares"]["approved"] == pytest.approx(2 / 6)
    assert overall["shares"]["redirected"] == 0.0
    assert overall["policy_decided"] == 1
    assert overall["policy_decided_share"] == pytest.approx(1 / 6)
    assert overall["recovery"] == {"paused": 3, "resumed": 1, "abandoned": 1, "rate": 0.5}
    assert overall["reviews"] == {"reviewed": 2, "flagged": 1, "flag_rate": 0.5}
    assert overall["cost"]["completed_tasks"] == 3
    assert overall["cost"]["total"] == 10.0
    assert overall["cost"]["per_completed_task"] == pytest.approx(10 / 3)


def test_the_figures_by_task_type_and_agent(fixture: Report) -> None:
    report: Any = fixture.as_json()
    refund, reply = report["by_task_type"]["refund"], report["by_task_type"]["reply"]
    assert (refund["escalations"], reply["escalations"]) == (4, 3)
    assert refund["decisions"] | {"rejected": 0} == {
        "approved": 1, "edited": 1, "rejected": 0, "terminated": 0, "redirected": 0,
        "expired": 0,
    }  # fmt: skip
    assert refund["time_to_decision_seconds"]["median"] == 300.0
    assert reply["decisions"]["expired"] == 1 and reply["policy_decided_share"] == 1 / 3
    assert refund["recovery"] == {"paused": 1, "resumed": 1, "abandoned": 0, "rate": 1.0}
    assert reply["recovery"] == {"paused": 1, "resumed": 0, "abandoned": 1, "rate": 0.0}
    assert report["by_task_type"]["unknown"]["recovery"]["paused"] == 1  # the agent-wide one
    assert refund["reviews"] == {"reviewed": 1, "flagged": 0, "flag_rate": 0.0}
    assert reply["reviews"] == {"reviewed": 1, "flagged": 1, "flag_rate": 1.0}
    assert refund["cost"] == {"completed_tasks": 2, "total": 10.0, "per_completed_task": 5.0}
    assert reply["cost"] == {"completed_tasks": 1, "total": 0.0, "per_completed_task": 0.0}
    billing, support = report["by_agent"][BILLING], report["by_agent"][SUPPORT]
    assert billing["recovery"] == {"paused": 2, "resumed": 1, "abandoned": 0, "rate": 1.0}
    assert support["time_to_decision_seconds"] == {"count": 1, "median": 900.0, "p90": 900.0}
    assert billing["time_to_ack_seconds"]["p90"] == 84.0
    assert list(report["daily"].values()) == [{"refund": 4, "reply": 3}]


def test_confidence_calibration_per_agent(fixture: Report) -> None:
    calibration: Any = fixture.as_json()["calibration"]

    def used(bands: list[dict[str, Any]]) -> list[tuple[str, int, int, float]]:
        return [
            (b["band"], b["decided"], b["approved"], b["approval_rate"])
            for b in bands
            if b["decided"]
        ]

    # Only what a person decided: e4 (the policy's) and e7 (still open) are not in it.
    assert used(calibration[BILLING]) == [("0.1-0.2", 1, 0, 0.0), ("0.6-0.7", 2, 2, 1.0)]
    assert used(calibration[SUPPORT]) == [("0.9-1.0", 1, 0, 0.0)]
    assert len(calibration["all"]) == 10


def test_the_text_form_is_aligned_tables(fixture: Report) -> None:
    text = render_text(fixture)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("  ") and "decided" in line)
    table = lines[header : lines.index("", header)]
    assert len({len(line) for line in table[:2]}) == 1  # the rule is as wide as the header
    assert any(line.startswith("type refund") for line in table)
    assert any(line.startswith(f"agent {BILLING}") for line in lines)
    assert "7m30s" in text and "13m30s" in text  # decide p50 and p90


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 0.9) == 46.0


def test_escbot_report_writes_json_and_refuses_a_bad_window(
    fixture: Report,
    database_url: str,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "report.json"
    assert (
        escbot(["report", "--since", "2026-11-21T00:00:00Z", "--format", "json", "-o", str(out)])
        == 0
    )
    written = json.loads(out.read_text())
    assert written["overall"]["escalations"] == 7
    assert set(written) == {"since", "until", "days", "overall", "by_task_type", "by_agent",
                            "calibration", "daily"}  # fmt: skip
    assert escbot(["report", "--since", "2999-01-01T00:00:00Z"]) == 2
    assert "is not in the past" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        escbot(["report", "--since", "soon"])
    assert stopped.value.code == 2
    assert "neither a span" in capsys.readouterr().err
