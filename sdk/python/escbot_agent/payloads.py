"""What an agent reads and writes, as values: inbox messages, approval outcomes, the
fields of the stream entries it adds, and the errors it reports. No I/O."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from pydantic import ValidationError
from redis.typing import EncodableT, FieldT

from escbot_agent.clock import iso, utcnow
from escbot_agent.contracts import (
    Action,
    AgentEvent,
    Context,
    ControlValue,
    DecisionValue,
    Escalation,
    Kind,
    Outcome,
    OutcomeEntry,
    Severity,
)
from escbot_agent.ids import check_escalation_id, check_task_id, new_escalation_id
from escbot_agent.keys import KeyNames

from .errors import AgentError, ControlPlaneUnreachable

log = logging.getLogger("escbot_agent")

FailMode = Literal["pause", "raise", "continue"]
GuardState = Literal["starting", "running", "paused", "killed", "unreachable", "closed"]
Verdict = Literal["go", "killed", "paused", "unreachable"]
FAIL_MODES: tuple[FailMode, ...] = ("pause", "raise", "continue")
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
INBOX_BATCH = 100
ContextLike = Context | Mapping[str, Any] | None
StreamFields = dict[FieldT, EncodableT]  # the fields of a stream entry, as redis-py takes them

_OUTAGE = {
    "pause": "failing closed: task %s is held as paused at its checkpoints until Redis "
    "answers (on_unreachable='pause')",
    "raise": "checkpoints of task %s raise ControlPlaneUnreachable until Redis answers "
    "(on_unreachable='raise')",
    "continue": "task %s continues WITHOUT kill or pause checks until Redis answers "
    "(on_unreachable='continue': failing open)",
}


def as_text(value: object) -> str:
    """A reply from a client with or without `decode_responses`, as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def describe(exc: BaseException) -> str:
    """An error in one line, for messages and logs."""
    message = str(exc).strip() or type(exc).__name__
    return message.splitlines()[0][:300]


def resolve_settings(url: str | None, prefix: str | None) -> tuple[str, str]:
    """The bot's own settings when not given: `REDIS_URL`, `REDIS_KEY_PREFIX`."""
    if url is None:
        url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if prefix is None:
        prefix = os.environ.get("REDIS_KEY_PREFIX", "")
    return url, prefix


def kill_keys(task_id: str, prefix: str, agent: str | None) -> list[str]:
    """What `is_killed` looks at: the task's kill, `kill:all`, and its agent's when given."""
    keys = KeyNames(prefix)
    names = [keys.kill(check_task_id(task_id)), keys.kill_all]
    return names if agent is None else [*names, keys.kill_agent(agent)]


def client_name(task_id: str, consumer: str) -> str:
    """Shown by `CLIENT LIST`, so an operator can see which agents are connected."""
    return "escbot-agent:" + "".join("_" if ch.isspace() else ch for ch in f"{task_id}:{consumer}")


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One entry of `inbox:{task_id}`: a redirect, a restart or a message, with who sent
    it. A restart (an operator lifted the task's pause with new instructions) is handed
    out as a redirect, marked as a restart."""

    id: str
    kind: Literal["redirect", "message", "restart"]
    text: str
    author: str
    source: Literal["operator", "agent"]
    at: str
    escalation_id: str | None

    @property
    def is_redirect(self) -> bool:
        """A new instruction to follow: a redirect, or a restart."""
        return self.kind in ("redirect", "restart")

    @property
    def is_restart(self) -> bool:
        """The operator restarted the task after a pause: start the work again with it."""
        return self.kind == "restart"


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    """How an approval request ended. `expired` means nobody decided in time; it is never
    reported as a rejection."""

    escalation_id: str
    decision: Outcome
    by: str
    at: str
    comment: str | None = None
    instruction: str | None = None
    rule: str | None = None  # the policy rule, when `by == "policy"` decided it alone
    # When approved: the arguments to act on, as the approver edited them (`edited`) or
    # as the agent proposed them. None otherwise.
    args: dict[str, Any] | None = None
    edited: bool = False
    approvals: tuple[str, ...] = ()  # who approved, when several people had to

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    @property
    def by_policy(self) -> bool:
        return self.by == "policy"


@dataclass(frozen=True, slots=True)
class InboxPlan:
    """One inbox round trip: acknowledge what the agent took, then (when `read`) read this
    consumer's pending entries and the new ones. Reading the pending list every time costs
    little (it holds at most the batch in hand) and recovers entries whose reply was lost."""

    ack: tuple[str, ...]
    read: bool

    @property
    def empty(self) -> bool:
        return not (self.ack or self.read)


def parse_control(key: str, raw: object) -> ControlValue | None:
    """The value of a kill or pause key. A key that exists but does not hold the contract's
    JSON (`SET kill:x 1` typed by hand, as the original notes allow) still counts."""
    if raw is None:
        return None
    value = as_text(raw)
    try:
        return ControlValue.model_validate_json(value)
    except ValidationError:
        shown = value if len(value) <= 200 else value[:197] + "..."
        return ControlValue(reason=f"{key} is set ({shown!r})", by="unknown", at="")


def parse_decision(
    escalation_id: str, raw: object, proposed: Mapping[str, Any] | None = None
) -> ApprovalOutcome:
    """`decision:{id}` as the agent sees it; `proposed`: the arguments it asked to use."""
    try:
        value = DecisionValue.model_validate_json(as_text(raw))
    except ValidationError as exc:
        raise AgentError(
            f"decision:{escalation_id} does not hold a DecisionValue: {exc.errors()[0]['msg']}"
        ) from None
    return ApprovalOutcome(
        escalation_id=escalation_id,
        decision=value.decision,
        by=value.by,
        at=value.at,
        comment=value.comment,
        instruction=value.instruction,
        rule=value.rule,
        args=_approved_args(value, proposed),
        edited=value.args is not None,
        approvals=tuple(value.approvals or ()),
    )


def _approved_args(
    value: DecisionValue, proposed: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    if value.decision != "approved":
        return None
    return dict(value.args) if value.args is not None else dict(proposed or {})


def expired_outcome(escalation_id: str, timeout: float) -> ApprovalOutcome:
    return ApprovalOutcome(
        escalation_id=escalation_id,
        decision="expired",
        by="timeout",
        at=iso(utcnow()),
        comment=f"no decision within {timeout:g}s; the agent stopped waiting",
    )


class EscalationOptions(TypedDict, total=False):
    """What `escalate` and `request_approval` accept beyond the reason and the action."""

    severity: Severity  # default "medium"
    confidence: float | None
    context: ContextLike
    task_type: str | None
    tier: str | None
    escalation_id: str | None  # default: a new ULID
    approvals: int | None  # how many different people must approve (the policy may ask more)
    schema: Mapping[str, Any] | None  # the action's JSON Schema: edits that break it are refused


def build_escalation(
    task_id: str,
    agent: str,
    *,
    reason: str,
    kind: Kind,
    action: str | None,
    args: Mapping[str, Any] | None,
    options: EscalationOptions,
    task_type: str | None = None,
) -> tuple[Escalation, str]:
    """A contract-valid escalation (CONTRACTS §3) and its id, always set: the id makes a
    retry one escalation rather than two. `task_type`: the guard's, unless the options
    give one."""
    unknown = sorted(set(options) - set(EscalationOptions.__annotations__))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    if action is None and (args or options.get("schema")):
        raise ValueError("args or a schema were given without an action name")
    context = options.get("context")
    escalation_id = options.get("escalation_id") or new_escalation_id()
    escalation = Escalation(
        escalation_id=escalation_id,
        task_id=task_id,
        agent=agent,
        task_type=options.get("task_type") or task_type,
        kind=kind,
        reason=reason,
        severity=options.get("severity", "medium"),
        confidence=options.get("confidence"),
        action=None if action is None else _action(action, args, options.get("schema")),
        context=context if isinstance(context, Context) else Context.model_validate(context or {}),
        tier=options.get("tier"),
        approvals=options.get("approvals"),
    )
    return escalation, escalation_id


def _action(name: str, args: Mapping[str, Any] | None, schema: Mapping[str, Any] | None) -> Action:
    return Action(name=name, args=dict(args or {}), schema=None if schema is None else dict(schema))


def escalation_not_written(escalation_id: str, exc: BaseException) -> ControlPlaneUnreachable:
    return ControlPlaneUnreachable(
        f"escalation {escalation_id} was not written ({describe(exc)}); "
        "retry with the same escalation_id",
        escalation_id=escalation_id,
    )


def decision_unreadable(
    key: str, escalation_id: str, exc: BaseException
) -> ControlPlaneUnreachable:
    return ControlPlaneUnreachable(
        f"waiting for {key}: {describe(exc)}", escalation_id=escalation_id
    )


def event_not_written(key: str, exc: BaseException) -> ControlPlaneUnreachable:
    return ControlPlaneUnreachable(f"{key} was not written: {describe(exc)}")


def expiry_note(timeout: float) -> str:
    """What the agent says in the thread when it stops waiting for a decision."""
    return f"stopped waiting for a decision after {timeout:g}s (expired)"


def check_timeout(timeout: float) -> float:
    if not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds")
    return timeout


def escalation_fields(escalation: Escalation) -> StreamFields:
    return {"payload": escalation.model_dump_json(exclude_none=True)}


def event_fields(task_id: str, body: str, escalation_id: str | None) -> StreamFields:
    if escalation_id is not None:
        check_escalation_id(escalation_id)
    event = AgentEvent(task_id=task_id, escalation_id=escalation_id or "", text=body)
    return {"task_id": event.task_id, "escalation_id": event.escalation_id, "text": event.text}


FinishStatus = Literal["completed", "failed"]


def outcome_fields(
    task_id: str, agent: str, status: FinishStatus, notice: str | None, task_type: str | None
) -> StreamFields:
    """An `outcomes` entry written by the agent about its own task (CONTRACTS §11)."""
    if status not in ("completed", "failed"):
        raise ValueError("an agent finishes a task as 'completed' or 'failed'")
    entry = OutcomeEntry(
        task_id=task_id,
        agent=agent,
        status=status,
        notice=(notice or "").strip()[:10_000],
        by=agent,
        at=iso(utcnow()),
        source="agent",
        task_type=task_type or "",
    )
    return {key: value for key, value in entry.model_dump().items()}


def stream_entries(reply: Any) -> list[tuple[str, dict[str, str] | None]]:
    """The entries of an XREADGROUP reply on one stream (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, Mapping) else (item[1] for item in reply)
    entries: list[tuple[str, dict[str, str] | None]] = []
    for items in streams:
        for entry_id, fields in items:
            decoded = {as_text(k): as_text(v) for k, v in fields.items()} if fields else None
            entries.append((as_text(entry_id), decoded))
    return entries
