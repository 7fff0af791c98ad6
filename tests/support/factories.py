"""Contract-valid test data."""

from __future__ import annotations

import uuid
from typing import Any

from bot.contracts import Escalation


def escalation_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "escalation_id": f"esc-{uuid.uuid4().hex[:12]}",
        "task_id": f"refund-{uuid.uuid4().hex[:6]}",
        "agent": "billing-agent",
        "task_type": "refund",
        "kind": "approval",
        "reason": "refund above the 500 EUR limit",
        "severity": "high",
        "confidence": 0.62,
        "action": {"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}},
        "context": {
            "source": "customer email #8812",
            "tool_calls": [{"name": "lookup_order", "args": {"id": "A-1"}, "result": "paid"}],
            "policy_rule": "refunds.limit",
            "state": {"step": 3},
        },
    }
    data.update(overrides)
    return data


def escalation(**overrides: Any) -> Escalation:
    return Escalation.model_validate(escalation_data(**overrides))
