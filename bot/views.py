"""Read-only pictures of the domain handed to Slack blocks, the CLI and agents' callers.

Plain dataclasses: building cards or printing status needs no database session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import iso

OPEN_STATES = ("open", "acknowledged")


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
class CardView:
    tier: str
    channel: str
    ts: str | None
    permalink: str | None
    superseded: bool
    posted_at: datetime | None


@dataclass(frozen=True)
class EscalationView:
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
    cards: tuple[CardView, ...] = field(default=())
    page_wanted: str | None = None
    page_sent: str | None = None
    page_error: str | None = None
    page_attempts: int = 0

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def outcome(self) -> str | None:
        return None if self.is_open else self.state


@dataclass(frozen=True)
class ControlView:
    kind: str
    target: str
    reason: str
    set_by: str
    set_at: datetime
    escalation_id: str | None = None
    revive_requested_by: str | None = None
    revive_requested_at: datetime | None = None


@dataclass(frozen=True)
class RejectedEntryView:
    stream_id: str
    received_at: datetime
    reason: str
    raw: str


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    killed: ControlView | None
    killed_all: ControlView | None
    paused: ControlView | None
    escalations: tuple[EscalationView, ...]
    recent: tuple[AuditRecord, ...]

    @property
    def stopped(self) -> bool:
        return self.killed is not None or self.killed_all is not None


@dataclass(frozen=True)
class Overview:
    open_escalations: tuple[EscalationView, ...]
    controls: tuple[ControlView, ...]
    rejected: tuple[RejectedEntryView, ...]
    pending_effects: int


@dataclass(frozen=True)
class ActionResult:
    """What an action did, in words for the person who asked and in data for a renderer."""

    action: str
    message: str
    audit_seq: int | None = None
    escalation: EscalationView | None = None
    control: ControlView | None = None
    keys: tuple[str, ...] = ()
