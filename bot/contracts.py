"""The contracts agents build on (CONTRACTS §2 and §3), as pydantic models.

Only pydantic is imported here: agents load these through the SDK.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from bot.ids import ID_PATTERN, check_escalation_id, check_task_id

Severity = Literal["low", "medium", "high", "critical"]
Kind = Literal["approval", "exception", "review"]
Outcome = Literal["approved", "rejected", "terminated", "redirected", "expired"]
Verdict = Literal["approve", "reject", "terminate", "redirect"]

OUTCOME_OF: dict[str, Outcome] = {
    "approve": "approved",
    "reject": "rejected",
    "terminate": "terminated",
    "redirect": "redirected",
}

# The pattern is published in the JSON Schema; validation goes through check_* so that the
# error says why an id is refused rather than quoting the pattern.
TaskId = Annotated[
    str,
    Field(json_schema_extra={"pattern": ID_PATTERN}, description="a task id; not 'all'"),
    AfterValidator(check_task_id),
]
EscalationId = Annotated[
    str, Field(json_schema_extra={"pattern": ID_PATTERN}), AfterValidator(check_escalation_id)
]


def _no_nul(value: str) -> str:
    # A NUL can be sent in JSON ("\u0000") but never stored in a text column.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
    AfterValidator(_no_nul),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
]


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: Name
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None


class Action(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: Name
    args: dict[str, Any] = Field(default_factory=dict)


class Context(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    policy_rule: str | None = None
    state: dict[str, Any] = Field(default_factory=dict)


class Escalation(BaseModel):
    """An escalation as an agent writes it into the `escalations` stream (field `payload`)."""

    model_config = ConfigDict(extra="ignore", title="Escalation")

    escalation_id: EscalationId | None = Field(
        default=None, description="idempotency key: the same id twice is one escalation"
    )
    task_id: TaskId
    agent: Name = "unknown"
    task_type: Name | None = None
    kind: Kind = "exception"
    reason: Text
    severity: Severity = "medium"
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    action: Action | None = None
    context: Context = Field(default_factory=Context)
    tier: Name | None = Field(default=None, description="starting tier name; default the first")


class ControlValue(BaseModel):
    """The JSON stored at `kill:{task_id}`, `kill:all` and `pause:{task_id}`."""

    model_config = ConfigDict(title="ControlValue")

    reason: str
    by: str
    at: str = Field(description="ISO 8601 UTC")
    escalation_id: str | None = None


class DecisionValue(BaseModel):
    """The JSON stored at `decision:{escalation_id}`."""

    model_config = ConfigDict(title="DecisionValue")

    decision: Outcome
    by: str
    at: str = Field(description="ISO 8601 UTC")
    comment: str | None = None
    instruction: str | None = None


class InboxEntry(BaseModel):
    """The fields of an entry of the `inbox:{task_id}` stream (all strings; '' for none)."""

    model_config = ConfigDict(title="InboxEntry")

    kind: Literal["redirect", "message"]
    text: str
    author: str
    source: Literal["operator", "agent"]
    at: str = Field(description="ISO 8601 UTC")
    escalation_id: str = ""


class AgentEvent(BaseModel):
    """The fields of an entry of the `agent-events` stream."""

    model_config = ConfigDict(title="AgentEvent")

    task_id: TaskId
    escalation_id: str = ""
    text: Text


CONTRACT_MODELS: dict[str, type[BaseModel]] = {
    "escalation": Escalation,
    "control-value": ControlValue,
    "decision-value": DecisionValue,
    "inbox-entry": InboxEntry,
    "agent-event": AgentEvent,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in CONTRACT_MODELS.items()}
