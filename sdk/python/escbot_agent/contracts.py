"""The contracts agents build on (CONTRACTS §2 and §3), as pydantic models: the one
definition, which the bot imports too.

Only pydantic is imported here. An action's JSON Schema is checked with `jsonschema` where
it is installed (the bot always has it; an agent may not, and then the bot checks it when
the escalation arrives).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
)

from escbot_agent.ids import ID_PATTERN, check_escalation_id, check_task_id

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
    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    name: Name
    args: dict[str, Any] = Field(default_factory=dict)
    args_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="a JSON Schema the arguments must satisfy; an edit that breaks it is refused",
    )

    @field_validator("args_schema")
    @classmethod
    def _a_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return schema
        try:
            import jsonschema
        except ImportError:  # the agent's side without it: the bot checks on intake
            return schema
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a JSON Schema: {exc.message}") from None
        return schema

    @model_serializer(mode="wrap")
    def _without_absent_schema(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("schema") is None:
            data.pop("schema", None)
        return data


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
    approvals: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="how many different people must approve (at least; the policy may ask more)",
    )


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
    rule: str | None = Field(
        default=None, description="the policy rule, for decisions by `policy` (omitted otherwise)"
    )
    args: dict[str, Any] | None = Field(
        default=None,
        description="the arguments approved, when a person edited them (omitted otherwise)",
    )
    approvals: list[str] | None = Field(
        default=None,
        description="who approved, when the escalation needed several people (omitted otherwise)",
    )

    def value(self) -> dict[str, Any]:
        """The JSON written to Redis: the optional fields of part two only when set."""
        data = self.model_dump()
        for key in OPTIONAL_DECISION_FIELDS:
            if data.get(key) is None:
                data.pop(key, None)
        return data


OPTIONAL_DECISION_FIELDS = ("rule", "args", "approvals")


class InboxEntry(BaseModel):
    """The fields of an entry of the `inbox:{task_id}` stream (all strings; '' for none)."""

    model_config = ConfigDict(title="InboxEntry")

    kind: Literal["redirect", "message", "restart"] = Field(
        description="restart: the operator lifted the task's pause with this instruction"
    )
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


OutcomeStatus = Literal["terminated", "abandoned", "expired", "rejected", "completed", "failed"]


class OutcomeEntry(BaseModel):
    """The fields of an entry of the `outcomes` stream (all strings; '' for none): how a
    task ended when it did not simply succeed, or, from agents, that it completed or
    failed. `task_type` is optional: the SDK adds it when the guard knows it."""

    model_config = ConfigDict(title="OutcomeEntry", extra="ignore")

    task_id: TaskId
    agent: str = "unknown"
    status: OutcomeStatus
    notice: str = ""
    by: str = ""
    escalation_id: str = ""
    at: str = Field(description="ISO 8601 UTC")
    source: Literal["bot", "agent"]
    task_type: str = ""


SignalName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
SIGNAL_DETAIL_LIMIT = 2000


class SignalEntry(BaseModel):
    """The fields of an entry of the `agent-signals` stream (all strings on the wire):
    what an agent observed, for the bot's automated triggers (CONTRACTS §9)."""

    model_config = ConfigDict(title="SignalEntry", extra="ignore")

    task_id: TaskId
    agent: Name
    signal: SignalName = Field(description="cost, failure, toxicity, out_of_scope, confidence…")
    value: float = Field(default=1.0, allow_inf_nan=False, description="a number; 1 when absent")
    detail: str = Field(default="", max_length=SIGNAL_DETAIL_LIMIT)
    at: str = Field(default="", description="ISO 8601 UTC, as the agent saw it")

    @field_validator("value", mode="before")
    @classmethod
    def _absent_is_one(cls, value: object) -> object:
        return 1.0 if value in (None, "") else value


CONTRACT_MODELS: dict[str, type[BaseModel]] = {
    "escalation": Escalation,
    "control-value": ControlValue,
    "decision-value": DecisionValue,
    "inbox-entry": InboxEntry,
    "agent-event": AgentEvent,
    "outcome": OutcomeEntry,
    "signal": SignalEntry,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in CONTRACT_MODELS.items()}
