"""Read-only records of the domain, handed to Slack blocks, the CLI and the pager.

Plain frozen dataclasses: building a card or printing a status needs no database session.
Names: a *Row* is the database's (bot/db/models.py), a *Record* is this immutable copy,
and a *View* is only ever a Slack modal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.clock import iso

OPEN_STATES = ("open", "acknowledged")


class AuditAction(StrEnum):
    """What an audit row records (CONTRACTS §7), plus the bot's own upkeep rows. Values
    are stored in `audit_log.action`: never rename one."""

    KILL = "kill"
    KILL_ALL = "kill_all"
    REVIVE = "revive"
    PAUSE = "pause"
    RESUME = "resume"
    REDIRECT = "redirect"
    MESSAGE = "message"
    APPROVE = "approve"
    REJECT = "reject"
    TERMINATE = "terminate"
    ACKNOWLEDGE = "acknowledge"
    ESCALATE = "escalate"
    PAGE = "page"
    EXPIRE = "expire"
    DENIED = "denied"
    REDIS_FAILED = "redis_failed"
    REDIS_RESTORED = "redis_restored"
    TRIGGER = "trigger"
    POLICY_CHANGED = "policy_changed"
    POLICY_REFUSED = "policy_refused"
    REVIEW = "review"
    SHOW_RAW = "show_raw"
    RESTART = "restart"
    ABANDON = "abandon"


# After these, an escalation's cards are drawn again.
CARD_CHANGING_ACTIONS = frozenset(
    {
        AuditAction.ACKNOWLEDGE,
        AuditAction.APPROVE,
        AuditAction.REJECT,
        AuditAction.REDIRECT,
        AuditAction.TERMINATE,
        AuditAction.ESCALATE,
        AuditAction.EXPIRE,
        AuditAction.PAGE,
    }
)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    task_id: str | None
    escalation_id: str | None
    reason: str | None
    state: dict[str, Any] | None
    detail: dict[str, Any] | None
    policy_version: str
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = iso(self.at)
        return data


@dataclass(frozen=True)
class CardRecord:
    tier: str
    channel: str
    ts: str | None
    permalink: str | None
    superseded: bool
    posted_at: datetime | None
    id: int = field(default=0, compare=False)
    digest_id: int | None = None  # posted in a digest (then `ts` is unset)


@dataclass(frozen=True)
class DigestRecord:
    """A digest message and the escalations it holds, each as it is now (without cards)."""

    id: int
    channel: str
    ts: str | None
    posted_at: datetime | None
    tier: str | None  # the tier its cards were for
    items: tuple[EscalationRecord, ...]


@dataclass(frozen=True)
class PageState:
    """Where an escalation stands with PagerDuty: the event it calls for (trigger,
    acknowledge, resolve), the last one PagerDuty took, and the failures since."""

    wanted: str | None = None
    sent: str | None = None
    error: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class EscalationRecord:
    id: str
    task_id: str
    agent: str
    task_type: str | None
    kind: str
    severity: str
    confidence: float | None
    reason: str
    action: dict[str, Any] | None
    context: dict[str, Any]
    state: str
    tier: str
    created_at: datetime
    policy_version: str
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    instruction: str | None = None
    next_action_at: datetime | None = None
    cards: tuple[CardRecord, ...] = field(default=())
    page_wanted: str | None = None
    page_sent: str | None = None
    page_error: str | None = None
    page_attempts: int = 0
    tier_entered_at: datetime | None = None
    ladder: str | None = None
    route: str | None = None
    ack_timeout: timedelta | None = None
    approvals_needed: int = 1
    decision_rule: str | None = None
    policy_note: str | None = None
    edited_args: dict[str, Any] | None = None
    edited_by: str | None = None
    approvals: tuple[str, ...] = ()

    @property
    def proposed_args(self) -> dict[str, Any]:
        return dict((self.action or {}).get("args") or {})

    @property
    def args_under_approval(self) -> dict[str, Any]:
        """What approving approves: the arguments as a person edited them, else as the
        agent proposed them."""
        return dict(self.edited_args) if self.edited_args is not None else self.proposed_args

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def outcome(self) -> str | None:
        return None if self.is_open else self.state

    @property
    def agent_state(self) -> dict[str, Any] | None:
        """The agent's own state as it escalated (`context.state`), for the audit row."""
        state = self.context.get("state")
        return state if isinstance(state, dict) and state else None


@dataclass(frozen=True)
class ControlRecord:
    kind: str
    target: str
    reason: str
    set_by: str
    set_at: datetime
    escalation_id: str | None = None
    revive_requested_by: str | None = None
    revive_requested_at: datetime | None = None
    active: bool = True


@dataclass(frozen=True)
class RejectedEntry:
    stream_id: str
    received_at: datetime
    reason: str
    raw: str
    stream: str = "escalations"


@dataclass(frozen=True)
class PendingEffect:
    """A control-plane write that Redis refused, kept until reconcile replays it."""

    id: int
    kind: str
    target: str
    value: dict[str, Any] | None


@dataclass(frozen=True)
class ReviewItem:
    """Work sampled for review: a request the policy decided alone, or a finished task."""

    id: int
    subject: str
    subject_id: str
    task_id: str
    agent: str
    task_type: str | None
    escalation_id: str | None
    rule: str | None
    rate: float
    summary: str
    created_at: datetime
    verdict: str | None = None  # looks_right | flagged
    verdict_by: str | None = None
    verdict_at: datetime | None = None
    verdict_note: str | None = None
    paused: str | None = None  # what the flag paused: the task id, or `agent:<name>`
    channel: str | None = None  # where its card is (posted once `ts` is set)
    ts: str | None = None

    @property
    def reviewed(self) -> bool:
        return self.verdict is not None


@dataclass(frozen=True)
class LiveTask:
    """A task as its guard reports it (`task:{task_id}`): `lost` when its guard stopped
    reporting more than 30 s ago without ending cleanly."""

    task_id: str
    agent: str
    task_type: str | None
    state: str
    step: str
    host: str
    pid: str
    started_at: str
    last_seen: datetime
    lost: bool = False


@dataclass(frozen=True)
class EscalationShown:
    """An escalation as `escbot show` prints it: as stored (redacted), and with `--raw` as
    the agent sent it, under the audit row that recorded who looked."""

    escalation: EscalationRecord
    raw: dict[str, Any] | None = None
    audit_seq: int | None = None


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    killed: ControlRecord | None
    killed_all: ControlRecord | None
    paused: ControlRecord | None
    escalations: tuple[EscalationRecord, ...]
    recent: tuple[AuditRecord, ...]
    live: LiveTask | None = None
    killed_agent: ControlRecord | None = None
    paused_agent: ControlRecord | None = None
    fleet_error: str | None = None

    @property
    def stopped(self) -> bool:
        return any(c is not None for c in (self.killed, self.killed_all, self.killed_agent))


@dataclass(frozen=True)
class Overview:
    open_escalations: tuple[EscalationRecord, ...]
    controls: tuple[ControlRecord, ...]
    rejected: tuple[RejectedEntry, ...]
    pending_effects: int
    reviews: tuple[ReviewItem, ...] = ()
    live_tasks: tuple[LiveTask, ...] = ()
    lost_tasks: tuple[LiveTask, ...] = ()
    fleet_error: str | None = None  # the fleet could not be read (Redis unreachable)


@dataclass(frozen=True)
class ActionResult:
    """What an action did, in words for the person who asked and in data for a renderer."""

    action: str
    message: str
    audit_seq: int | None = None
    escalation: EscalationRecord | None = None
    control: ControlRecord | None = None
    keys: tuple[str, ...] = ()
