"""The policy file (CONTRACTS §4 and §8): roles, ladders of tiers, routes, severity SLAs,
what an agent may do alone (conditions in CEL), stages of rollout and sampled review."""

from bot.policy.evaluate import Decision, Evaluation, Request, decide, evaluate, sampled
from bot.policy.fields import Role, Severity, Stage, format_duration, parse_duration
from bot.policy.holder import PolicyHolder, holder_of
from bot.policy.loading import load_policy, parse_policy, policy_version, read_policy
from bot.policy.model import DEFAULT_LADDER, ActionRule, Policy, Route, SeverityRule, Tier
from bot.policy.unavailable import UNAVAILABLE_VERSION, UnavailablePolicy

__all__ = [
    "DEFAULT_LADDER",
    "UNAVAILABLE_VERSION",
    "ActionRule",
    "Decision",
    "Evaluation",
    "Policy",
    "PolicyHolder",
    "Request",
    "Role",
    "Route",
    "Severity",
    "SeverityRule",
    "Stage",
    "Tier",
    "UnavailablePolicy",
    "decide",
    "evaluate",
    "format_duration",
    "holder_of",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "policy_version",
    "read_policy",
    "sampled",
]
