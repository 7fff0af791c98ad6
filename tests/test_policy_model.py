"""The policy file of part two (CONTRACTS §8) as a pure model: validation messages,
routing, SLAs, decisions, stages and sampling. No I/O."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.errors import ConfigError
from bot.policy import Policy, Request, decide, evaluate, parse_policy, sampled
from tests.conftest import POLICY_YAML

EXAMPLE = Path(__file__).resolve().parents[1] / "policy.example.yaml"
BASE: dict[str, Any] = yaml.safe_load(POLICY_YAML)


def policy_of(**extra: Any) -> Policy:
    return parse_policy(yaml.safe_dump(BASE | extra).encode(), source="policy.yaml")


PAYMENTS = [
    {"name": "pay-triage", "channel": "C0PAYTRI", "ack_timeout": "2m"},
    {"name": "pay-oncall", "channel": "C0PAYONC", "ack_timeout": "10m", "page": True},
]


def approval(action: str = "issue_refund", **fields: Any) -> Request:
    values: dict[str, Any] = {"kind": "approval", "action": action, "task_type": "refund"}
    return Request(**(values | fields))


def test_the_example_policy_is_valid_and_uses_every_key() -> None:
    policy = parse_policy(EXAMPLE.read_bytes(), source=str(EXAMPLE))
    data = yaml.safe_load(EXAMPLE.read_text())
    for key in ("ladders", "routes", "severities", "actions", "stages", "reviews"):
        assert data.get(key), key
    assert policy.ladders and policy.routes and policy.actions


def test_a_part_one_policy_means_what_it_meant() -> None:
    policy = parse_policy(POLICY_YAML.encode())
    evaluation = evaluate(policy, approval(severity="critical", confidence=0.99))
    assert evaluation.route is None and evaluation.ladder == "tiers"
    assert evaluation.start.name == "triage" and evaluation.ack_timeout is None
    assert evaluation.approvals == 1
    # No actions and the default stage (narrow): every approval goes to a person.
    assert evaluation.decision.outcome == "human"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (
            {"routes": [{"match": {"task_type": "x"}, "ladder": "nope"}]},
            "routes[0].ladder: unknown ladder 'nope'",
        ),
        ({"routes": [{"match": {"agent": "bill[ing"}, "ladder": "tiers"}]}, "is not a pattern"),
        ({"routes": [{"match": {"colour": "red"}, "ladder": "tiers"}]}, "colour: unknown key"),
        (
            {"routes": [{"match": {"agent": []}, "ladder": "tiers"}]},
            "an empty list matches nothing",
        ),
        (
            {"actions": {"refund": {"decide": "approve", "when": "args.amount >"}}},
            "actions.refund.when",
        ),
        (
            {"actions": {"refund": {"decide": "approve", "when": "args.amount >"}}},
            "does not compile",
        ),
        ({"actions": {"refund": {"decide": "approve", "when": "cost > 5"}}}, "reads cost"),
        ({"actions": {"refund": {"decide": "maybe"}}}, "actions.refund.decide"),
        (
            {"actions": {"refund": {"decide": "auto", "review_sample": 1.5}}},
            "not a rate between 0 and 1",
        ),
        ({"actions": {"refund": {"decide": "auto", "min_confidence": -0.1}}}, "not a rate"),
        ({"reviews": {"support": 2}}, "reviews.support: 2.0 is not a rate"),
        ({"stages": {"refund": "wide"}}, "stages.refund"),
        ({"severities": {"urgent": {"ack_timeout": "1m"}}}, "severities.urgent"),
        ({"severities": {"high": {"start": "nowhere"}}}, "severities.high.start: 'nowhere'"),
        ({"severities": {"high": {"ack_timeout": "0s"}}}, "a duration must be positive"),
        ({"severities": {"high": {"approvals": 0}}}, "severities.high.approvals"),
        ({"ladders": {"payments": [{**PAYMENTS[0], "name": "triage"}]}}, "unique"),
        ({"ladders": {"tiers": PAYMENTS}}, "ladders.tiers: the name is taken"),
        ({"ladders": {"payments": []}}, "ladders.payments"),
    ],
)
def test_every_error_names_the_file_the_place_and_the_reason(
    extra: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_of(**extra)
    message = str(caught.value)
    assert message.startswith("policy.yaml: "), message
    assert needle in message, message
    assert "\n" not in message


def test_routes_first_match_wins_by_each_key_and_glob() -> None:
    policy = policy_of(
        ladders={"payments": PAYMENTS},
        routes=[
            {"name": "by-kind", "match": {"kind": "review"}, "ladder": "tiers"},
            {
                "name": "big",
                "match": {"agent": "billing-*", "severity": ["high", "critical"]},
                "ladder": "payments",
            },
            {"name": "by-action", "match": {"action": "issue_?efund"}, "ladder": "payments"},
            {"name": "refunds", "match": {"task_type": "refund"}, "ladder": "payments"},
        ],
    )
    route = lambda **f: evaluate(policy, Request(**f)).route  # noqa: E731
    assert route(kind="review", agent="billing-eu", severity="high") == "by-kind"
    assert route(agent="billing-eu", severity="high") == "big"
    assert route(agent="billing-eu", severity="low") is None
    assert route(agent="ops", severity="critical", action="issue_refund") == "by-action"
    assert route(task_type="refund") == "refunds"
    assert route(task_type="refunds") is None  # a literal is the whole value
    assert evaluate(policy, Request(task_type="refund")).ladder == "payments"


def test_an_unnamed_route_is_named_by_its_place() -> None:
    policy = policy_of(routes=[{"match": {"agent": "x"}, "ladder": "tiers"}, {"ladder": "tiers"}])
    assert evaluate(policy, Request(agent="y")).route == "routes[1]"


def test_severities_replace_deadlines_start_and_quorum() -> None:
    policy = policy_of(
        severities={
            "critical": {"ack_timeout": "1m", "start": "last", "approvals": 2},
            "high": {"start": "review"},
            "low": {"ack_timeout": "1h"},
        }
    )
    critical = evaluate(policy, Request(severity="critical"))
    assert critical.start.name == "incident" and critical.start.page
    assert critical.deadline_of(critical.start) == timedelta(minutes=1)
    assert critical.approvals == 2
    assert evaluate(policy, Request(severity="high")).start.name == "review"
    low = evaluate(policy, Request(severity="low"))
    assert [low.deadline_of(t) for t in low.tiers] == [timedelta(hours=1)] * 3
    # The agent may ask for a later tier than the policy gives, never an earlier one.
    assert evaluate(policy, Request(severity="high", tier="incident")).start.name == "incident"
    assert evaluate(policy, Request(severity="high", tier="triage")).start.name == "review"


def test_auto_deny_and_approve_with_and_without_a_condition() -> None:
    policy = policy_of(
        actions={
            "issue_refund": {"decide": "approve", "when": "args.amount > 500", "otherwise": "auto"},
            "close_account": {"decide": "deny"},
            "rollback": {"decide": "auto"},
            "wire": {"decide": "auto", "when": "args.amount < 10"},
        }
    )
    outcome = lambda action, **args: decide(policy, approval(action, args=args)).outcome  # noqa: E731
    assert outcome("issue_refund", amount=740) == "human"
    assert outcome("issue_refund", amount=70) == "auto"
    assert outcome("close_account") == "deny"
    assert outcome("rollback") == "auto"
    assert outcome("wire", amount=5) == "auto"
    assert outcome("wire", amount=50) == "human"  # `otherwise` defaults to approve
    decision = decide(policy, approval("issue_refund", args={"amount": 70}))
    assert decision.rule == "issue_refund" and "is false: auto" in decision.why


@pytest.mark.parametrize(
    "args", [{}, {"amount": "seven hundred"}, {"amount": None}], ids=["missing", "string", "null"]
)
def test_a_condition_that_fails_on_a_request_sends_it_to_a_person(args: dict[str, Any]) -> None:
    policy = policy_of(actions={"issue_refund": {"decide": "auto", "when": "args.amount < 500"}})
    decision = decide(policy, approval(args=args))
    assert decision.outcome == "human"
    assert decision.note and "could not be evaluated" in decision.note


def test_a_condition_must_give_true_or_false() -> None:
    policy = policy_of(actions={"issue_refund": {"decide": "auto", "when": "args.amount"}})
    assert decide(policy, approval(args={"amount": 3})).outcome == "human"


def test_low_confidence_goes_to_a_person_with_the_reason() -> None:
    policy = policy_of(actions={"issue_refund": {"decide": "auto", "min_confidence": 0.8}})
    assert decide(policy, approval(confidence=0.9)).outcome == "auto"
    low = decide(policy, approval(confidence=0.62))
    assert low.outcome == "human" and low.note == "Confidence 0.62 is below the policy's 0.80"
    unknown = decide(policy, approval(confidence=None))
    assert unknown.outcome == "human" and "not given" in (unknown.note or "")


def test_stages_assist_narrow_broad() -> None:
    actions = {"rollback": {"decide": "auto"}, "close_account": {"decide": "deny"}}
    stages = {"support": "assist", "refund": "narrow", "deploy": "broad"}
    policy = policy_of(actions=actions, stages=stages)

    def outcome(task_type: str, action: str) -> str:
        return decide(policy, approval(action, task_type=task_type)).outcome

    assert outcome("support", "rollback") == "human"  # assist: every action to a person
    assert outcome("support", "close_account") == "deny"  # …but a deny still denies
    assert outcome("refund", "rollback") == "auto"  # narrow: as written
    assert outcome("refund", "unlisted") == "human"  # narrow: unlisted need a person
    assert outcome("deploy", "unlisted") == "auto"  # broad: unlisted run alone
    assert outcome("other", "unlisted") == "human"  # the default stage is narrow
    with_star = policy_of(actions={"*": {"decide": "deny"}}, stages=stages)
    assert decide(with_star, approval("unlisted", task_type="deploy")).outcome == "deny"


def test_only_approvals_with_an_action_are_decided_by_the_policy() -> None:
    policy = policy_of(actions={"*": {"decide": "auto"}}, stages={"refund": "broad"})
    assert decide(policy, Request(kind="exception", action="x")).outcome == "human"
    assert decide(policy, Request(kind="approval", action=None)).outcome == "human"


def test_the_quorum_is_the_stricter_of_the_rule_and_the_severity() -> None:
    policy = policy_of(
        actions={"deploy": {"decide": "approve", "approvals": 2}},
        severities={"critical": {"approvals": 3}},
    )
    assert evaluate(policy, approval("deploy")).approvals == 2
    assert evaluate(policy, approval("deploy", severity="critical")).approvals == 3


def test_sampling_follows_the_contract_and_is_deterministic() -> None:
    identifier = "01JD0000000000000000000000"
    value = int.from_bytes(hashlib.sha256(identifier.encode()).digest()[:8], "big") / 2**64
    assert sampled(identifier, value + 1e-12) and not sampled(identifier, value)
    assert not sampled(identifier, 0.0) and sampled(identifier, 1.0)
    ids = [f"esc-{n}" for n in range(10_000)]
    assert [sampled(i, 0.05) for i in ids] == [sampled(i, 0.05) for i in ids]
    for rate in (0.01, 0.05, 0.5):
        hits = sum(sampled(i, rate) for i in ids)
        spread = 4 * math.sqrt(10_000 * rate * (1 - rate))  # four standard deviations
        assert abs(hits - 10_000 * rate) < spread, (rate, hits)


def test_review_sample_applies_to_auto_decisions_only() -> None:
    policy = policy_of(
        actions={"issue_refund": {"decide": "auto", "min_confidence": 0.5, "review_sample": 0.1}}
    )
    assert decide(policy, approval(confidence=0.9)).review_sample == 0.1
    assert decide(policy, approval(confidence=0.1)).review_sample == 0.0


TRIGGER = {"name": "cost-spike", "signal": "cost", "sum_over": "5m", "above": 20, "then": ["pause"]}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"above": None}, "give exactly one of above, at_least or below"),
        ({"below": 1}, "give exactly one of above, at_least or below"),
        ({"count_over": "1m"}, "give sum_over or count_over, not both"),
        ({"then": []}, "triggers[0].then"),
        ({"then": ["pause", "pause"]}, "lists an action twice"),
        ({"then": ["explode"]}, "triggers[0].then"),
        ({"scope": "fleet"}, "triggers[0].scope"),
        ({"sum_over": "48h"}, "a window of at most 24h"),
        ({"sum_over": "0s"}, "a duration must be positive"),
        ({"signal": "no spaces"}, "triggers[0].signal"),
        ({"name": "bad name!"}, "not a trigger name"),
        ({"severity": "urgent"}, "triggers[0].severity"),
        ({"colour": "red"}, "colour: unknown key"),
    ],
)
def test_trigger_errors_name_the_place(change: dict[str, Any], needle: str) -> None:
    trigger = {k: v for k, v in (TRIGGER | change).items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        policy_of(triggers=[trigger])
    assert needle in str(caught.value), str(caught.value)


def test_trigger_names_are_unique_and_triggers_are_found_by_signal() -> None:
    with pytest.raises(ConfigError, match=r"triggers\[1\].name: 'cost-spike' is used twice"):
        policy_of(triggers=[TRIGGER, TRIGGER])
    policy = policy_of(triggers=[TRIGGER, TRIGGER | {"name": "other", "signal": "failure"}])
    assert [t.name for t in policy.triggers_of("cost")] == ["cost-spike"]
    assert policy.triggers_of("nothing") == ()
    trigger = policy.triggers_of("cost")[0]
    assert trigger.holds(20.5) and not trigger.holds(20)
    assert trigger.describe(20.5) == "cost summed over 5m is 20.5, above 20"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"delivery": {"digest_over": -1}}, "delivery.digest_over"),
        ({"delivery": {"digest_over": "ten"}}, "delivery.digest_over"),
        ({"delivery": {"unposted_grace": "soon"}}, "delivery.unposted_grace"),
        ({"delivery": {"digest_under": 3}}, "delivery.digest_under"),
        ({"redaction": {"detectors": ["email", "ssn"]}}, "redaction.detectors"),
        ({"redaction": {"patterns": {"order": "ORD-[0-9"}}}, "not a regular expression"),
        ({"redaction": {"patterns": {"order": "x*"}}}, "matches the empty text"),
        ({"redaction": {"patterns": {"email": "x+"}}}, "is a built-in detector"),
        ({"redaction": {"keep": ["payload.x"]}}, "is not a dotted path"),
        ({"redaction": {"store_raw": "maybe"}}, "redaction.store_raw"),
    ],
)
def test_a_bad_delivery_or_redaction_section_is_refused_in_one_line(
    extra: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_of(**extra)
    message = str(caught.value)
    assert message.startswith("policy.yaml: ") and needle in message, message
    assert "\n" not in message
