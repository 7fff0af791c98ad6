"""What the policy says of one request: its route and ladder, where it starts, its
deadlines and quorum, and whether the policy decides it (auto / deny) or a person does.
Pure: the same policy and request always give the same answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from bot.policy.conditions import ConditionFailed
from bot.policy.fields import Severity, format_duration
from bot.policy.model import ANY_ACTION, DEFAULT_LADDER, ActionRule, Policy, Tier

Outcome = Literal["auto", "deny", "human"]
OUTCOME_OF_DECIDE: dict[str, Outcome] = {"auto": "auto", "deny": "deny", "approve": "human"}
DEFAULT_STAGE = "narrow"


@dataclass(frozen=True)
class Request:
    """The parts of an escalation the policy reads."""

    kind: str = "exception"
    severity: Severity = "medium"
    task_type: str | None = None
    agent: str = "unknown"
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    tier: str | None = None  # the starting tier the agent asked for, if any

    def match_values(self) -> dict[str, str]:
        return {
            "task_type": self.task_type or "",
            "agent": self.agent,
            "severity": self.severity,
            "action": self.action or "",
            "kind": self.kind,
        }

    def condition_values(self) -> dict[str, Any]:
        return {
            "args": self.args,
            "action": self.action or "",
            "agent": self.agent,
            "task_type": self.task_type or "",
            "severity": self.severity,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class Decision:
    """Who decides: the policy (`auto`, `deny`) or a person (`human`), by which rule and
    why. `note` is what a person's card says about it (None when there is nothing to say)."""

    outcome: Outcome
    rule: str | None
    why: str
    note: str | None = None
    review_sample: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    route: str | None  # the route's name, or None when no route matched
    ladder: str
    tiers: tuple[Tier, ...]
    start: Tier
    ack_timeout: timedelta | None  # the severity's, replacing every tier's own
    approvals: int
    decision: Decision

    def deadline_of(self, tier: Tier) -> timedelta:
        return self.ack_timeout or tier.ack_timeout

    @property
    def route_label(self) -> str:
        return self.route or ("default" if self.ladder == DEFAULT_LADDER else self.ladder)


def sampled(identifier: str, rate: float) -> bool:
    """CONTRACTS §8: the first 8 bytes of sha256 of the id, big-endian, over 2^64, below
    the rate. The same id always gets the same answer."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(identifier.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def route_of(policy: Policy, request: Request) -> tuple[str | None, str]:
    """The first route that matches (its name, or `routes[i]`) and its ladder."""
    route = policy.router.route(request.match_values())
    if route is None:
        return None, DEFAULT_LADDER
    return route.name, route.ladder


def _start(policy: Policy, ladder: list[Tier], request: Request) -> Tier:
    """The later of where the severity says to start and where the agent asked to (an
    agent may ask for more urgency than the policy gives, never less)."""
    rule = policy.severities.get(request.severity)
    start = rule.start if rule is not None else None
    names = [tier.name for tier in ladder]
    index = 0
    if start == "last":
        index = len(ladder) - 1
    elif start not in (None, "first") and start in names:
        index = names.index(start)
    if request.tier is not None:
        if request.tier not in names:
            raise KeyError(request.tier)
        index = max(index, names.index(request.tier))
    return ladder[index]


def _action_rule(policy: Policy, action: str) -> tuple[str | None, ActionRule | None]:
    if action in policy.actions:
        return action, policy.actions[action]
    if ANY_ACTION in policy.actions:
        return ANY_ACTION, policy.actions[ANY_ACTION]
    return None, None


def decide(policy: Policy, request: Request) -> Decision:
    """CONTRACTS §8: the action rule (with its condition and confidence floor), then the
    stage of the task type."""
    if request.kind != "approval" or request.action is None:
        return Decision("human", None, f"a {request.kind} escalation always goes to a person")
    action = request.action
    stage = policy.stages.get(request.task_type or "", DEFAULT_STAGE)
    name, rule = _action_rule(policy, action)
    review = 0.0
    note: str | None = None
    if rule is None:
        outcome: Outcome = "auto" if stage == "broad" else "human"
        why = f"{action} has no rule; stage {stage}: " + (
            "unlisted actions run alone" if outcome == "auto" else "unlisted actions need a person"
        )
    else:
        decided_as = rule.decide
        why = f"rule {name}: decide {rule.decide}"
        if rule.when is not None:
            try:
                holds = rule.when.holds(request.condition_values())
            except ConditionFailed as failed:
                decided_as = "approve"
                why = f"rule {name}: condition `{rule.when.source}` failed ({failed})"
                note = f"The policy's condition for {action} could not be evaluated ({failed})"
            else:
                decided_as = rule.decide if holds else rule.otherwise
                why = f"rule {name}: `{rule.when.source}` is {str(holds).lower()}: {decided_as}"
        outcome = OUTCOME_OF_DECIDE[decided_as]
        if outcome == "auto" and rule.min_confidence is not None:
            confidence = request.confidence
            if confidence is None or confidence < rule.min_confidence:
                shown = "not given" if confidence is None else f"{confidence:.2f}"
                outcome = "human"
                why += f"; confidence {shown} is below {rule.min_confidence:.2f}"
                note = f"Confidence {shown} is below the policy's {rule.min_confidence:.2f}"
        review = rule.review_sample
    if stage == "assist" and outcome == "auto":
        outcome = "human"
        why += f"; {request.task_type} is in assist: every action goes to a person"
        note = note or f"{request.task_type} is in assist: every action goes to a person"
    return Decision(outcome, name, why, note, review if outcome == "auto" else 0.0)


def evaluate(policy: Policy, request: Request) -> Evaluation:
    """Everything the policy says of the request. KeyError when the agent asked for a
    starting tier that its ladder does not have."""
    route, ladder_name = route_of(policy, request)
    ladder = policy.ladder(ladder_name)
    severity = policy.severities.get(request.severity)
    _name, rule = _action_rule(policy, request.action) if request.action else (None, None)
    approvals = max(
        (rule.approvals if rule is not None and rule.approvals else 1),
        (severity.approvals if severity is not None and severity.approvals else 1),
    )
    return Evaluation(
        route=route,
        ladder=ladder_name,
        tiers=tuple(ladder),
        start=_start(policy, ladder, request),
        ack_timeout=severity.ack_timeout if severity is not None else None,
        approvals=approvals,
        decision=decide(policy, request),
    )


def deadlines(evaluation: Evaluation) -> list[tuple[Tier, str]]:
    """Each tier from the start on, with its acknowledgement deadline as a duration."""
    tiers = list(evaluation.tiers)
    start = tiers.index(evaluation.start)
    return [(tier, format_duration(evaluation.deadline_of(tier))) for tier in tiers[start:]]
