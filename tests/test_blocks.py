"""Block Kit builders: a snapshot of each card state, and Slack's limits respected."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from blocks.actions import Action, ButtonValue
from blocks.card import Card, CardContext, escalation_card
from blocks.messages import announcement, overview_message, status_message, usage
from blocks.modals import context_modal, edit_modal, redirect_modal, reject_modal
from bot.errors import InvalidInput
from bot.records import (
    AuditRecord,
    CardRecord,
    ControlRecord,
    EscalationRecord,
    Overview,
    TaskStatus,
)

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
OPENED = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=2)

BASE = EscalationRecord(
    id="01JDQ7ZV3N8K4M2P6R9T1W5Y7A",
    task_id="refund-4711",
    agent="billing-agent",
    task_type="refund",
    kind="approval",
    severity="high",
    confidence=0.62,
    reason="refund above the 500 EUR limit",
    action={"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}},
    context={
        "source": "Customer email #8812: the parcel never arrived.",
        "tool_calls": [
            {"name": "lookup_order", "args": {"id": "A-1"}, "result": "paid, 740 EUR"},
            {"name": "carrier_status", "args": {"parcel": "P-9"}, "result": "lost"},
        ],
        "policy_rule": "refunds.limit",
    },
    state="open",
    tier="triage",
    created_at=OPENED,
    policy_version="sha256:059c9d2aa42ed70f",
    next_action_at=OPENED + timedelta(minutes=5),
    cards=(CardRecord("triage", "C0TRIAGE", "1700000000.000100", None, False, OPENED),),
)
TRIAGE = CardContext(next_tier="review", final_action="reject")
DECIDED = {
    "decided_by": "U0OPERATOR",
    "decided_at": OPENED + timedelta(minutes=4, seconds=12),
    "next_action_at": None,
}

STATES: dict[str, tuple[EscalationRecord, CardContext]] = {
    "open": (BASE, TRIAGE),
    "acknowledged": (
        replace(
            BASE,
            state="acknowledged",
            acknowledged_by="U0OPERATOR",
            acknowledged_at=OPENED + timedelta(minutes=1),
            next_action_at=None,
        ),
        TRIAGE,
    ),
    "approved": (replace(BASE, state="approved", **DECIDED), TRIAGE),
    "rejected": (
        replace(BASE, state="rejected", comment="Too large: offer 500 EUR.", **DECIDED),
        TRIAGE,
    ),
    "redirected": (
        replace(BASE, state="redirected", instruction="Refund 500 and open a ticket.", **DECIDED),
        TRIAGE,
    ),
    "terminated": (replace(BASE, state="terminated", **DECIDED), TRIAGE),
    "expired": (
        replace(
            BASE,
            state="expired",
            tier="incident",
            decided_by="policy",
            decided_at=OPENED + timedelta(minutes=50),
            next_action_at=None,
        ),
        CardContext(next_tier=None, final_action="reject", escalated_to="incident"),
    ),
    "last_tier": (
        replace(BASE, tier="incident"),
        CardContext(next_tier=None, final_action="terminate"),
    ),
    "escalated_older_card": (
        replace(BASE, tier="review"),
        CardContext(next_tier="incident", final_action="reject", escalated_to="review"),
    ),
    "routed_for_a_person": (
        replace(
            BASE,
            tier="pay-triage",
            ladder="payments",
            route="big-refunds",
            approvals_needed=2,
            policy_note="Confidence 0.62 is below the policy's 0.80",
        ),
        CardContext(next_tier="pay-oncall", final_action="reject"),
    ),
    "quorum_one_of_two": (
        replace(BASE, approvals_needed=2, approvals=("U0FIRST",)),
        TRIAGE,
    ),
    "edited_open": (
        replace(
            BASE,
            edited_args={"amount": 500, "currency": "EUR", "note": "goodwill"},
            edited_by="U0EDITOR",
        ),
        TRIAGE,
    ),
    "approved_edited_by_quorum": (
        replace(
            BASE,
            state="approved",
            approvals_needed=2,
            approvals=("U0EDITOR", "U0OPERATOR"),
            edited_args={"amount": 500},
            edited_by="U0EDITOR",
            **DECIDED,
        ),
        TRIAGE,
    ),
    "oversized_context": (
        replace(
            BASE,
            reason="Limit exceeded. " * 400,
            action={"name": "issue_refund", "args": {f"line_{i}": "x" * 80 for i in range(60)}},
            context={
                "source": "email " * 2000,
                "tool_calls": [
                    {"name": f"tool_{i}", "args": {"q": "y" * 500}, "result": "z" * 900}
                    for i in range(12)
                ],
                "policy_rule": "refunds.limit",
                "state": {"memory": ["step"] * 500},
            },
        ),
        TRIAGE,
    ),
}


def as_json(blocks: list[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


def check_snapshot(name: str, data: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if UPDATE or not path.exists():
        if not UPDATE and os.environ.get("CI"):
            pytest.fail(f"missing snapshot {path.name}: run with UPDATE_SNAPSHOTS=1")
        path.write_text(text)
    assert json.loads(path.read_text()) == json.loads(text), f"{name} differs from its snapshot"


def check_limits(card: Card) -> None:
    assert len(card.blocks) <= 50
    for block in card.blocks:
        block.validate_json()
        data = block.to_dict()
        if data["type"] == "section":
            assert len(data.get("text", {}).get("text", "")) <= 3000
            assert all(len(field["text"]) <= 2000 for field in data.get("fields", []))
        for element in data.get("elements", []):
            if element.get("type") == "button":
                assert len(element["value"]) <= 2000


@pytest.mark.parametrize("state", sorted(STATES))
def test_card_snapshots(state: str) -> None:
    view, ctx = STATES[state]
    card = escalation_card(view, ctx, NOW)
    check_limits(card)
    check_snapshot(f"card_{state}", {"text": card.text, "blocks": as_json(card.blocks)})


def action_ids(card: Card) -> list[str]:
    return [
        element["action_id"]
        for block in as_json(card.blocks)
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_open_cards_have_every_button_and_decided_cards_none() -> None:
    opened = escalation_card(BASE, TRIAGE, NOW)
    assert action_ids(opened) == [
        Action.ACKNOWLEDGE,
        Action.APPROVE,
        Action.EDIT,
        Action.REJECT,
        Action.REDIRECT,
        Action.TERMINATE,
        Action.ESCALATE,
    ]
    acknowledged = escalation_card(STATES["acknowledged"][0], TRIAGE, NOW)
    assert Action.ACKNOWLEDGE not in action_ids(acknowledged)
    for state in ("approved", "rejected", "redirected", "terminated", "expired"):
        assert action_ids(escalation_card(STATES[state][0], TRIAGE, NOW)) == []


def test_edit_needs_a_proposed_action_and_escalate_a_next_tier() -> None:
    exception = replace(BASE, kind="exception", action=None)
    assert Action.EDIT not in action_ids(escalation_card(exception, TRIAGE, NOW))
    last, ctx = STATES["last_tier"]
    assert Action.ESCALATE not in action_ids(escalation_card(last, ctx, NOW))


def test_a_quorum_shows_who_approved_and_an_edit_what_changed() -> None:
    record, ctx = STATES["quorum_one_of_two"]
    text = json.dumps(as_json(escalation_card(record, ctx, NOW).blocks), ensure_ascii=False)
    assert "1 of 2 approvals so far: <@U0FIRST>" in text and "Approve (1 of 2)" in text
    record, ctx = STATES["edited_open"]
    text = json.dumps(as_json(escalation_card(record, ctx, NOW).blocks), ensure_ascii=False)
    assert "Arguments edited by <@U0EDITOR>" in text
    assert "amount: 740 → 500" in text and 'note: added \\"goodwill\\"' in text
    record, ctx = STATES["approved_edited_by_quorum"]
    text = json.dumps(as_json(escalation_card(record, ctx, NOW).blocks), ensure_ascii=False)
    assert "2 of 2 approvals: <@U0EDITOR>, <@U0OPERATOR>" in text
    assert "currency: removed" in text


def test_buttons_carry_a_versioned_value_and_terminate_asks_to_confirm() -> None:
    blocks = as_json(escalation_card(BASE, TRIAGE, NOW).blocks)
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    for button in buttons:
        value = ButtonValue.model_validate_json(button["value"])
        assert value.version == 1 and value.escalation_id == BASE.id
    terminate = next(b for b in buttons if b["action_id"] == Action.TERMINATE)
    assert terminate["style"] == "danger" and terminate["confirm"]["confirm"]["text"]


def test_oversized_context_is_cut_and_offers_the_full_context() -> None:
    view, ctx = STATES["oversized_context"]
    card = escalation_card(view, ctx, NOW)
    assert card.truncated
    assert Action.FULL_CONTEXT in action_ids(card)
    modal = context_modal(view)
    modal.validate_json()
    data = modal.to_dict()
    assert len(data["blocks"]) <= 100
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in data["blocks"])
    text = "".join(b.get("text", {}).get("text", "") for b in data["blocks"])
    assert "tool_11" in text and "memory" in text  # what the card cut, the modal shows


def test_decided_card_says_who_when_and_how_long_after() -> None:
    text = json.dumps(as_json(escalation_card(STATES["rejected"][0], TRIAGE, NOW).blocks))
    assert "<@U0OPERATOR>" in text and "4m 12s after the escalation" in text
    assert "Too large: offer 500 EUR." in text


def test_modals_are_valid() -> None:
    for modal in (
        reject_modal(BASE, "C0TRIAGE"),
        redirect_modal(BASE, "C0TRIAGE"),
        edit_modal(BASE, "C0TRIAGE"),
    ):
        modal.validate_json()
        data = modal.to_dict()
        assert json.loads(data["private_metadata"]) == {"v": 1, "e": BASE.id, "c": "C0TRIAGE"}
    check_snapshot("modal_reject", reject_modal(BASE, "C0TRIAGE").to_dict())
    check_snapshot("modal_edit", edit_modal(BASE, "C0TRIAGE").to_dict())


def test_the_edit_modal_starts_from_the_arguments_under_approval() -> None:
    edited = replace(BASE, edited_args={"amount": 500}, edited_by="U0EDITOR")
    field = edit_modal(edited).to_dict()["blocks"][1]["element"]
    assert json.loads(field["initial_value"]) == {"amount": 500}
    schema = {"type": "object", "properties": {"amount": {"type": "integer", "maximum": 740}}}
    with_schema = replace(BASE, action={**(BASE.action or {}), "schema": schema})
    meta = json.loads(edit_modal(with_schema).to_dict()["private_metadata"])
    assert meta["s"] == schema
    huge = {"type": "object", "description": "x" * 4000}
    with_huge = replace(BASE, action={**(BASE.action or {}), "schema": huge})
    assert "s" not in json.loads(edit_modal(with_huge).to_dict()["private_metadata"])
    with pytest.raises(InvalidInput, match="too long to edit in Slack"):
        edit_modal(replace(BASE, action={"name": "x", "args": {"blob": "y" * 4000}}))
    with pytest.raises(InvalidInput, match="proposes no action"):
        edit_modal(replace(BASE, action=None))


def test_status_list_and_announcements_are_valid() -> None:
    control = ControlRecord("kill", "refund-4711", "runaway", "U0OPERATOR", OPENED)
    record = AuditRecord(
        7,
        OPENED,
        "U0OPERATOR",
        "kill",
        "refund-4711",
        None,
        "runaway",
        None,
        None,
        "v",
        "0" * 64,
        "1" * 64,
    )
    status = TaskStatus("refund-4711", control, None, None, (BASE,), (record,))
    overview = Overview((BASE,), (control,), (), 2)
    for message in (status_message(status), overview_message(overview)):
        assert len(message.blocks) <= 50
        for block in message.blocks:
            block.validate_json()
    for action, task, detail in (
        ("kill", "refund-4711", None),
        ("kill_all", "all", None),
        ("terminate", "refund-4711", {"outcome": "terminated"}),
        ("revive", "all", {"step": "requested"}),
        ("revive", "all", {"step": "confirmed", "requested_by": "U0ADMIN1"}),
        ("redis_failed", "refund-4711", {"keys": ["kill:refund-4711"]}),
    ):
        message = announcement(replace(record, action=action, task_id=task, detail=detail))
        assert message is not None
        for block in message.blocks:
            block.validate_json()
    assert announcement(replace(record, action="approve")) is None
    assert "`/agent kill" in usage("unknown command `x`")


def test_a_burst_of_announcements_is_one_message_and_buttons_stay_apart() -> None:
    from blocks.messages import merge_announcements

    record = AuditRecord(
        1, OPENED, "U0OPERATOR", "kill", "t", None, None, None, None, "v", "0" * 64, "1" * 64
    )
    kills = [announcement(replace(record, task_id=f"t{i}")) for i in range(45)]
    ask = announcement(
        replace(record, action="revive", task_id="all", detail={"step": "requested"})
    )
    messages = [m for m in [*kills[:3], ask, *kills[3:]] if m is not None]
    merged = merge_announcements(messages)
    assert [len(m.blocks) for m in merged] == [3, 2, 40, 2]
    assert "`t0`" in json.dumps(as_json(merged[0].blocks)) and merged[0].text.startswith("3 ")
    assert merge_announcements([]) == []
