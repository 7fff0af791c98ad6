"""What every adapter shares, without a framework: one escalation id per tool call, and
what a decision means for the call (run it, with which arguments, or tell the model no)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from escbot_agent.payloads import ApprovalOutcome, EscalationOptions

Verdict = Literal["approved", "edited", "rejected", "expired"]
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
_MAX_ID = 128


def call_escalation_id(task_id: str, call_id: str) -> str:
    """The escalation id of one tool call of one task: the same every time the framework
    replays the call (a resumed graph, a rerun of a saved run state), so the bot sees one
    escalation, and a decision already made is found again. Long or unusual ids are
    shortened with a hash rather than refused."""
    readable = _UNSAFE.sub("-", f"{task_id}.{call_id}")
    if len(readable) <= _MAX_ID and readable[0].isalnum():
        return readable
    digest = hashlib.sha256(f"{task_id}\x00{call_id}".encode()).hexdigest()[:24]
    return f"{_UNSAFE.sub('-', task_id)[: _MAX_ID - 26]}.c{digest}"


@dataclass(frozen=True)
class ToolVerdict:
    """A decision as a tool call sees it. `args`: what to run with (the approver's edit, or
    as proposed) when allowed; `message`: what the model is told when not."""

    escalation_id: str
    verdict: Verdict
    args: dict[str, Any] | None
    message: str | None
    by: str | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict in ("approved", "edited")

    def as_resume(self) -> dict[str, Any]:
        """The JSON value a framework resumes with (LangGraph's `Command(resume=...)`)."""
        return {
            "escalation_id": self.escalation_id,
            "verdict": self.verdict,
            "args": self.args,
            "message": self.message,
            "by": self.by,
        }

    @classmethod
    def from_resume(cls, value: Mapping[str, Any]) -> ToolVerdict:
        verdict = value.get("verdict")
        if verdict not in ("approved", "edited", "rejected", "expired"):
            raise ValueError(f"not a tool verdict: {verdict!r}")
        args = value.get("args")
        return cls(
            escalation_id=str(value.get("escalation_id", "")),
            verdict=verdict,
            args=dict(args) if isinstance(args, Mapping) else None,
            message=value.get("message"),
            by=value.get("by"),
        )


def verdict_of(outcome: ApprovalOutcome) -> ToolVerdict:
    """Approved (as proposed or edited) runs; rejected, redirected, terminated and expired do
    not, and the model is told why in one sentence."""
    eid = outcome.escalation_id
    if outcome.approved:
        verdict: Verdict = "edited" if outcome.edited else "approved"
        return ToolVerdict(eid, verdict, dict(outcome.args or {}), None, outcome.by)
    if outcome.decision == "expired":
        return ToolVerdict(eid, "expired", None, "No decision came in time; not run.", None)
    if outcome.decision == "redirected":
        message = f"Not run: redirected by {outcome.by}: {outcome.instruction or ''}".strip()
    else:
        message = f"Not run: {outcome.decision} by {outcome.by}"
        if outcome.comment:
            message += f": {outcome.comment}"
    return ToolVerdict(eid, "rejected", None, message, outcome.by)


def with_escalation_id(options: EscalationOptions, escalation_id: str) -> EscalationOptions:
    """The adapter's escalation options for one call, its id set."""
    merged = EscalationOptions(**options)
    merged["escalation_id"] = escalation_id
    return merged
