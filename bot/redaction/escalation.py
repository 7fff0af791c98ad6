"""An escalation redacted at intake, before it is stored: what people will read of it
(the reason, the action's arguments, the context) with its own placeholders, and the
map that puts the agent's values back."""

from __future__ import annotations

from typing import Any

from bot.contracts import Escalation
from bot.redaction.redactor import RedactionRules, Redactor

_ACTION_OWN = ("name", "schema")  # the action's name and schema are the agent's code


def redact_escalation(
    escalation: Escalation, rules: RedactionRules
) -> tuple[Escalation, dict[str, str]]:
    """The escalation as it is stored and shown, and placeholder → original."""
    if not rules.active:
        return escalation, {}
    redactor = Redactor(rules)
    payload = escalation.model_dump(mode="json", by_alias=True)
    payload["reason"] = redactor.value(payload["reason"], "reason")
    action: dict[str, Any] | None = payload.get("action")
    if action:
        payload["action"] = {
            key: value if key in _ACTION_OWN else redactor.value(value, f"action.{key}")
            for key, value in action.items()
        }
    payload["context"] = redactor.value(payload.get("context") or {}, "context")
    if not redactor.added:
        return escalation, {}
    return Escalation.model_validate(payload), dict(redactor.added)
