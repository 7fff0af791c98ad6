"""`escbot policy explain`: what the policy does with one request, and why, in words."""

from __future__ import annotations

from bot.policy.evaluate import Request, deadlines, evaluate
from bot.policy.model import Policy

VERDICT = {
    "auto": "approved by the policy, at once (no card)",
    "deny": "rejected by the policy, at once (no card)",
    "human": "a person decides (a card in the starting tier's channel)",
}


def explain(policy: Policy, request: Request) -> list[str]:
    evaluation = evaluate(policy, request)
    decision = evaluation.decision
    route = evaluation.route or "none matched: the default ladder"
    lines = [
        f"policy: {policy.version}",
        f"route: {route}",
        f"ladder: {evaluation.ladder} ({', '.join(t.name for t in evaluation.tiers)})",
        f"starts at: {evaluation.start.name} ({evaluation.start.channel})",
        "deadlines: "
        + ", ".join(
            f"{tier.name} {timeout}" + (" (pages)" if tier.page else "")
            for tier, timeout in deadlines(evaluation)
        )
        + f"; then on_final_timeout: {policy.on_final_timeout}",
        f"quorum: {evaluation.approvals} approval(s)",
        f"decision: {VERDICT[decision.outcome]}",
        f"why: {decision.why}",
    ]
    if decision.note:
        lines.append(f"the card says: {decision.note}")
    if decision.review_sample:
        lines.append(f"review: {decision.review_sample:.0%} of these are sampled for review")
    return lines
