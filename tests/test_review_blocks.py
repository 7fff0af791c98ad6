"""The review card and the flag modal: a snapshot of each state, Slack's limits, versioned
button values, and no buttons once a verdict is given."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from blocks.actions import Action, Callback, Field_, ReviewButtonValue, ReviewModalMetadata
from blocks.card import Card
from blocks.review import flag_modal, review_card
from bot.records import EscalationRecord, ReviewItem
from tests.test_blocks import BASE, OPENED, as_json, check_limits, check_snapshot

DECIDED_AT = OPENED + timedelta(milliseconds=40)
DECISION: EscalationRecord = replace(
    BASE,
    id="01JDQ7ZV3N8K4M2P6R9T1W5Y7B",
    task_type="support",
    action={"name": "send_reply", "args": {"to": "customer-88", "template": "refund-sent"}},
    reason="tell the customer the refund is on its way",
    confidence=0.93,
    state="approved",
    decided_by="policy",
    decided_at=DECIDED_AT,
    decision_rule="send_reply",
    next_action_at=None,
    cards=(),
)
DECISION_REVIEW = ReviewItem(
    id=12,
    subject="decision",
    subject_id=DECISION.id,
    task_id=DECISION.task_id,
    agent=DECISION.agent,
    task_type="support",
    escalation_id=DECISION.id,
    rule="send_reply",
    rate=0.05,
    summary="billing-agent send_reply {...}: tell the customer the refund is on its way",
    created_at=DECIDED_AT,
)
TASK_REVIEW = ReviewItem(
    id=13,
    subject="task",
    subject_id="refund-4711",
    task_id="refund-4711",
    agent="billing-agent",
    task_type="refund",
    escalation_id=None,
    rule="reviews.refund",
    rate=0.02,
    summary="Your refund of 740 EUR is on its way; it reaches your card in 3 to 5 days.",
    created_at=OPENED + timedelta(hours=1),
)
VERDICT = {"verdict_by": "U0OPERATOR", "verdict_at": OPENED + timedelta(hours=2)}

STATES: dict[str, tuple[ReviewItem, EscalationRecord | None]] = {
    "decision_waiting": (DECISION_REVIEW, DECISION),
    "task_waiting": (TASK_REVIEW, None),
    "decision_looks_right": (replace(DECISION_REVIEW, verdict="looks_right", **VERDICT), DECISION),
    "task_flagged_and_paused": (
        replace(
            TASK_REVIEW,
            verdict="flagged",
            verdict_note="It promised 3 to 5 days; card refunds take up to 10.",
            paused="refund-4711",
            **VERDICT,
        ),
        None,
    ),
    "decision_flagged_agent_paused": (
        replace(
            DECISION_REVIEW,
            verdict="flagged",
            verdict_note="Wrong template for a partial refund.",
            paused="agent:billing-agent",
            **VERDICT,
        ),
        DECISION,
    ),
}


def buttons(card: Card) -> list[dict]:
    return [
        element
        for block in as_json(card.blocks)
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def text_of(card: Card) -> str:
    return json.dumps(as_json(card.blocks), ensure_ascii=False)


@pytest.mark.parametrize("state", sorted(STATES))
def test_review_card_snapshots(state: str) -> None:
    review, decision = STATES[state]
    card = review_card(review, decision)
    check_limits(card)
    check_snapshot(f"review_{state}", {"text": card.text, "blocks": as_json(card.blocks)})


def test_a_waiting_card_says_what_was_done_and_what_came_out_with_two_buttons() -> None:
    card = review_card(DECISION_REVIEW, DECISION)
    text = text_of(card)
    for needle in ("send_reply", "customer-88", "refund-sent", "rule `send_reply`", "5%"):
        assert needle in text, needle
    assert "Approved" in text and "by the policy" in text and f"decision:{DECISION.id}" in text
    assert [b["action_id"] for b in buttons(card)] == [
        Action.REVIEW_LOOKS_RIGHT,
        Action.REVIEW_FLAG,
    ]
    for button in buttons(card):
        value = ReviewButtonValue.model_validate_json(button["value"])
        assert value.version == 1 and value.review_id == 12
    task = text_of(review_card(TASK_REVIEW, None))
    assert "finished `refund-4711`" in task and "740 EUR is on its way" in task


@pytest.mark.parametrize(
    "state", ["decision_looks_right", "task_flagged_and_paused", "decision_flagged_agent_paused"]
)
def test_a_card_with_a_verdict_says_who_when_and_has_no_buttons(state: str) -> None:
    review, decision = STATES[state]
    card = review_card(review, decision)
    text = text_of(card)
    assert buttons(card) == []
    assert "<@U0OPERATOR>" in text and "<!date^" in text
    assert (review.verdict_note or "") in text
    if review.paused:
        assert f"`{review.paused}`" in text


def test_a_decision_no_longer_stored_falls_back_to_the_summary() -> None:
    card = review_card(DECISION_REVIEW, None)
    check_limits(card)
    assert "tell the customer" in text_of(card)


def test_oversized_texts_stay_inside_slacks_limits() -> None:
    huge = replace(
        DECISION,
        reason="x" * 9000,
        action={"name": "send_reply", "args": {f"k{i}": "v" * 100 for i in range(200)}},
    )
    review = replace(
        DECISION_REVIEW, verdict="flagged", verdict_note="n" * 9000, paused="t", **VERDICT
    )
    check_limits(review_card(review, huge))
    check_limits(review_card(replace(TASK_REVIEW, summary="s" * 9000), None))


def test_the_flag_modal_asks_what_is_wrong_and_what_to_pause() -> None:
    modal = flag_modal(TASK_REVIEW, "C0TRIAGE")
    modal.validate_json()
    data = modal.to_dict()
    assert data["callback_id"] == Callback.REVIEW_FLAG
    meta = ReviewModalMetadata.model_validate_json(data["private_metadata"])
    assert (meta.review_id, meta.channel) == (13, "C0TRIAGE")
    assert json.loads(data["private_metadata"]) == {"v": 1, "r": 13, "c": "C0TRIAGE"}
    inputs = {block["block_id"]: block for block in data["blocks"] if block["type"] == "input"}
    assert set(inputs) == {Field_.WRONG, Field_.PAUSE}
    assert not inputs[Field_.WRONG].get("optional")
    radio = inputs[Field_.PAUSE]["element"]
    assert [o["value"] for o in radio["options"]] == ["none", "task", "agent"]
    assert radio["initial_option"]["value"] == "none"
    check_snapshot("modal_review_flag", data)
