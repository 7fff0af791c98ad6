"""The policy at intake and on the sweep, through the real service, Redis and both
databases: routes, SLAs, policy decisions, reviews and policy changes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa
import yaml

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.models import CardRow, OutboxRow
from bot.db.store import Store
from bot.errors import InvalidInput
from bot.policy import Policy, parse_policy
from tests.conftest import OPERATOR, POLICY_YAML, StaticDirectory
from tests.support.factories import escalation
from tests.test_sweep import Clock

BASE: dict[str, Any] = yaml.safe_load(POLICY_YAML)
PAYMENTS = [
    {"name": "pay-triage", "channel": "C0PAYTRI", "ack_timeout": "2m"},
    {"name": "pay-oncall", "channel": "C0PAYONC", "ack_timeout": "10m", "page": True},
]
RULES: dict[str, Any] = {
    "ladders": {"payments": PAYMENTS},
    "routes": [{"name": "refunds", "match": {"task_type": "refund"}, "ladder": "payments"}],
    "severities": {"critical": {"ack_timeout": "1m", "start": "last", "approvals": 2}},
    "actions": {
        "issue_refund": {
            "decide": "approve",
            "when": "args.amount > 500",
            "otherwise": "auto",
            "min_confidence": 0.5,
        },
        "close_account": {"decide": "deny"},
        "send_reply": {"decide": "auto", "review_sample": 1.0},
    },
    "reviews": {"refund": 1.0},
}


def policy_yaml(**changes: Any) -> str:
    return yaml.safe_dump(BASE | RULES | changes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ruled(
    store: Store, control: ControlPlane, directory: StaticDirectory, clock: Clock
) -> EscalationService:
    policy = parse_policy(policy_yaml().encode())
    return EscalationService(store, control, policy, directory=directory, clock=clock, paging=True)


def audit_rows(store: Store, **match: Any) -> list[dict[str, Any]]:
    with store.reading() as session:
        rows = [record.as_json() for record in audit.iter_records(session)]
    return [row for row in rows if all(row.get(k) == v for k, v in match.items())]


def owed(store: Store, escalation_id: str) -> list[tuple[str, str | None]]:
    with store.reading() as session:
        rows = session.execute(
            sa.select(OutboxRow.topic, OutboxRow.wanted).where(
                OutboxRow.escalation_id == escalation_id
            )
        )
        return sorted((row.topic, row.wanted) for row in rows)


def test_auto_decides_at_intake_with_no_card(
    ruled: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    record, created = ruled.open_escalation(
        escalation(action={"name": "issue_refund", "args": {"amount": 70}}, confidence=0.9)
    )
    assert created and record.state == "approved" and record.decided_by == "policy"
    assert record.decision_rule == "issue_refund" and record.cards == ()
    assert owed(store, record.id) == []
    value = json.loads(rdb.get(f"{prefix}decision:{record.id}") or "{}")
    assert value["decision"] == "approved" and value["by"] == "policy"
    assert value["rule"] == "issue_refund"
    [row] = audit_rows(store, escalation_id=record.id)
    assert row["actor"] == "policy" and row["action"] == "approve"
    assert row["detail"]["rule"] == "issue_refund" and row["policy_version"] == ruled.policy.version
    again, created_again = ruled.open_escalation(
        escalation(escalation_id=record.id, action={"name": "issue_refund", "args": {"amount": 70}})
    )
    assert not created_again and again.state == "approved"
    assert len(audit_rows(store, escalation_id=record.id)) == 1


def test_deny_rejects_at_intake(
    ruled: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    record, _ = ruled.open_escalation(escalation(action={"name": "close_account", "args": {}}))
    assert record.state == "rejected" and record.decided_by == "policy"
    assert json.loads(rdb.get(f"{prefix}decision:{record.id}") or "{}")["decision"] == "rejected"
    [row] = audit_rows(store, escalation_id=record.id)
    assert row["action"] == "reject" and row["actor"] == "policy"


def test_a_person_decides_on_the_routes_ladder_with_its_deadline(
    ruled: EscalationService, store: Store, clock: Clock
) -> None:
    record, _ = ruled.open_escalation(escalation(severity="high"))  # a 740 EUR refund
    assert record.state == "open" and record.ladder == "payments" and record.route == "refunds"
    assert [card.channel for card in record.cards] == ["C0PAYTRI"]
    assert record.next_action_at == clock.now + timedelta(minutes=2)
    assert record.policy_note is None
    assert owed(store, record.id) == [("card", "post")]
    clock.advance(minutes=2, seconds=1)
    ruled.escalate_due()
    climbed = ruled.get_escalation(record.id)
    assert climbed.tier == "pay-oncall" and climbed.cards[-1].channel == "C0PAYONC"
    assert ("page", "trigger") in owed(store, record.id)


def test_a_critical_one_starts_at_the_paging_tier_and_pages_at_once(
    ruled: EscalationService, store: Store, clock: Clock
) -> None:
    record, _ = ruled.open_escalation(escalation(severity="critical"))
    assert record.tier == "pay-oncall" and record.approvals_needed == 2
    assert record.next_action_at == clock.now + timedelta(minutes=1)
    assert ("page", "trigger") in owed(store, record.id)


def test_a_failing_condition_and_low_confidence_reach_a_person_with_the_reason(
    ruled: EscalationService,
) -> None:
    failing, _ = ruled.open_escalation(escalation(action={"name": "issue_refund", "args": {}}))
    assert failing.state == "open" and "could not be evaluated" in (failing.policy_note or "")
    unsure, _ = ruled.open_escalation(
        escalation(action={"name": "issue_refund", "args": {"amount": 5}}, confidence=0.2)
    )
    assert unsure.state == "open"
    assert unsure.policy_note == "Confidence 0.20 is below the policy's 0.50"


def test_exceptions_are_never_decided_by_the_policy(ruled: EscalationService) -> None:
    record, _ = ruled.open_escalation(
        escalation(kind="exception", action={"name": "close_account", "args": {}})
    )
    assert record.state == "open" and record.cards


def test_sampled_auto_decisions_and_finished_tasks_become_reviews(
    ruled: EscalationService,
) -> None:
    record, _ = ruled.open_escalation(
        escalation(task_type="support", action={"name": "send_reply", "args": {"to": "c-1"}})
    )
    assert record.state == "approved"
    assert ruled.task_finished("refund-99", "billing-agent", task_type="refund", notice="done")
    assert not ruled.task_finished("other-1", "x", task_type="support-reply")  # rate 0
    # A second report of the same task is the same review.
    ruled.task_finished("refund-99", "billing-agent", task_type="refund")
    waiting = ruled.overview().reviews
    assert [(r.subject, r.subject_id) for r in waiting] == [
        ("decision", record.id),
        ("task", "refund-99"),
    ]
    assert waiting[0].rule == "send_reply" and waiting[1].rule == "reviews.refund"


def test_the_task_type_of_a_finished_task_defaults_to_its_escalations(
    ruled: EscalationService,
) -> None:
    record, _ = ruled.open_escalation(escalation())  # task type refund
    assert ruled.task_finished(record.task_id, "billing-agent", task_type=None)


def test_a_policy_change_is_recorded_once_whichever_replica_sees_it(
    store: Store, control: ControlPlane, directory: StaticDirectory
) -> None:
    first = parse_policy(POLICY_YAML.encode())
    second = parse_policy(policy_yaml().encode())
    replicas = [EscalationService(store, control, first, directory=directory) for _ in range(2)]
    assert replicas[0].adopt_policy(first) is None  # the first start: nothing changed
    assert replicas[0].adopt_policy(second) == first.version
    assert replicas[1].adopt_policy(second) is None
    assert replicas[1].policy.version == second.version
    [row] = audit_rows(store, action="policy_changed")
    assert row["detail"]["old"] == first.version and row["detail"]["new"] == second.version
    assert replicas[0].refuse_policy("sha256:bad", "policy.yaml: routes: nope")
    assert not replicas[1].refuse_policy("sha256:bad", "policy.yaml: routes: nope")
    [refused] = audit_rows(store, action="policy_refused")
    assert "routes: nope" in refused["reason"]


def test_open_escalations_keep_their_deadlines_and_climb_the_new_ladder(
    ruled: EscalationService, store: Store, clock: Clock
) -> None:
    record, _ = ruled.open_escalation(escalation(severity="high"))
    slower = [
        dict(PAYMENTS[0], ack_timeout="1h"),
        dict(PAYMENTS[1], name="pay-night", channel="C0NIGHT"),
    ]
    changed: Policy = parse_policy(policy_yaml(ladders={"payments": slower}).encode())
    ruled.adopt_policy(changed)
    assert ruled.get_escalation(record.id).next_action_at == record.next_action_at
    clock.advance(minutes=2, seconds=1)  # its own deadline, not the new 1h
    ruled.escalate_due()
    climbed = ruled.get_escalation(record.id)
    assert climbed.tier == "pay-night" and climbed.cards[-1].channel == "C0NIGHT"
    with store.reading() as session:
        channels = session.scalars(
            sa.select(CardRow.channel).where(CardRow.escalation_id == record.id)
        ).all()
    assert list(channels) == ["C0PAYTRI", "C0NIGHT"]


def test_an_unknown_starting_tier_names_the_tiers_of_its_ladder(ruled: EscalationService) -> None:
    with pytest.raises(InvalidInput, match="pay-triage, pay-oncall"):
        ruled.open_escalation(escalation(tier="triage"))


def test_decide_still_works_on_a_routed_escalation(ruled: EscalationService) -> None:
    record, _ = ruled.open_escalation(escalation())
    result = ruled.decide(record.id, OPERATOR, "approve")
    assert result.escalation is not None and result.escalation.state == "approved"
