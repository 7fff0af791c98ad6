import json

import pytest
from pydantic import ValidationError

from bot.contracts import Escalation, json_schemas
from bot.errors import InvalidId
from bot.ids import check_task_id, new_escalation_id
from tests.support.factories import escalation_data

BAD_TASK_IDS = ["*", "a b", "a\nb", "abc\n", "x" * 200, "all", "ALL", "", "-lead", "kill:*"]


@pytest.mark.parametrize("bad", BAD_TASK_IDS)
def test_bad_task_ids_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(InvalidId) as caught:
        check_task_id(bad)
    assert "invalid task id" in str(caught.value)


@pytest.mark.parametrize("good", ["refund-4711", "a", "A.b_c:d-9", "x" * 128])
def test_good_task_ids_pass(good: str) -> None:
    assert check_task_id(good) == good


def test_minimal_escalation_gets_the_documented_defaults() -> None:
    esc = Escalation.model_validate({"task_id": "refund-4711", "reason": "limit"})
    assert (esc.kind, esc.severity, esc.tier, esc.escalation_id) == (
        "exception",
        "medium",
        None,
        None,
    )
    assert esc.context.tool_calls == []


@pytest.mark.parametrize(
    "change",
    [
        {"reason": "   "},
        {"severity": "urgent"},
        {"confidence": 1.5},
        {"kind": "question"},
        {"task_id": "all"},
        {"escalation_id": "has space"},
    ],
)
def test_invalid_escalations_are_refused(change: dict) -> None:
    with pytest.raises(ValidationError):
        Escalation.model_validate(escalation_data(**change))


def test_json_schemas_cover_every_contract_and_validate_examples() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schemas = json_schemas()
    assert set(schemas) == {
        "escalation",
        "control-value",
        "decision-value",
        "inbox-entry",
        "agent-event",
        "outcome",
        "signal",
    }
    jsonschema.validate(escalation_data(), schemas["escalation"])
    outcome = {"task_id": "t-1", "status": "completed", "at": "2026-12-01T00:00:00Z"}
    jsonschema.validate(outcome | {"source": "agent"}, schemas["outcome"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(outcome | {"source": "agent", "status": "done"}, schemas["outcome"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"reason": "no task"}, schemas["escalation"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(escalation_data(task_id="a b"), schemas["escalation"])
    json.dumps(schemas)


def test_escalation_ids_are_sortable_and_valid() -> None:
    first, second = new_escalation_id(), new_escalation_id()
    assert len(first) == 26
    assert first[:10] <= second[:10]
