"""The digest and a card in a modal: snapshots, Slack's limits, and a digest drawn again
that says what became of its escalations."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from blocks.actions import Action, ButtonValue
from blocks.card import escalation_card
from blocks.digest import MAX_ITEMS, card_modal, digest_capacity, digest_message
from bot.records import EscalationRecord
from tests.test_blocks import BASE, NOW, TRIAGE, as_json, check_limits, check_snapshot

DEADLINE = NOW + timedelta(minutes=5)


def item(i: int, **changes: object) -> EscalationRecord:
    return replace(
        BASE,
        id=f"01JDQ7ZV3N8K4M2P6R9T1W{i:04d}",
        task_id=f"refund-{i:04d}",
        severity=("low", "medium")[i % 2],
        agent=("billing-agent", "support-agent")[i % 2],
        reason=("refund above the 500 EUR limit", "customer asked for a human")[(i // 2) % 2],
        **changes,  # type: ignore[arg-type]
    )


FLOOD = [item(i) for i in range(12)]


def buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_digest_snapshot() -> None:
    message = digest_message(FLOOD, tier="triage", deadline=DEADLINE)
    check_limits(message)
    check_snapshot("digest_waiting", {"text": message.text, "blocks": as_json(message.blocks)})


def test_a_digest_groups_by_agent_and_reason_with_counts_and_a_button_each() -> None:
    blocks = as_json(digest_message(FLOOD, tier="triage", deadline=DEADLINE).blocks)
    lines = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(lines) == 4  # two agents, two reasons
    assert all(line.endswith("— *3*") for line in lines)
    opened = buttons(blocks)
    assert [ButtonValue.model_validate_json(b["value"]).escalation_id for b in opened] == [
        view.id
        for group in ((0, 4, 8), (1, 5, 9), (2, 6, 10), (3, 7, 11))
        for view in (FLOOD[i] for i in group)
    ]
    assert len({b["action_id"] for b in opened}) == len(opened)
    assert all(b["action_id"].startswith(Action.OPEN_CARD.value + ".") for b in opened)


def test_a_digest_drawn_again_says_what_was_decided_or_climbed() -> None:
    handled = [
        replace(FLOOD[0], state="approved", next_action_at=None),
        replace(FLOOD[1], tier="review"),
        *FLOOD[2:],
    ]
    message = digest_message(handled, tier="triage", deadline=DEADLINE)
    blocks = as_json(message.blocks)
    labels = [b["text"]["text"] for b in buttons(blocks)]
    assert labels[0].startswith("✅ refund-0000")
    assert "→ review" in labels[3]  # FLOOD[1] leads the second group
    assert "(2 waiting)" in blocks[1]["text"]["text"]
    assert "11 waiting" in message.text
    everything = [replace(view, state="rejected", next_action_at=None) for view in FLOOD]
    done = digest_message(everything, tier="triage", deadline=None)
    assert "Nothing waiting" in json_text(as_json(done.blocks))
    check_snapshot("digest_handled", {"text": done.text, "blocks": as_json(done.blocks)})


def json_text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@pytest.mark.parametrize("groups", [1, 3, 40, 100])
def test_a_digest_holds_as_many_as_fit_in_slacks_limits(groups: int) -> None:
    many = [replace(item(i), reason=f"reason {i % groups}") for i in range(300)]
    size = digest_capacity(many)
    assert 1 <= size <= MAX_ITEMS
    message = digest_message(many[:size], tier="triage", deadline=DEADLINE)
    check_limits(message)
    if groups == 1:
        assert size == MAX_ITEMS


def test_a_card_opened_from_a_digest_is_the_card_in_a_modal() -> None:
    card = escalation_card(FLOOD[0], TRIAGE, NOW)
    view = card_modal(FLOOD[0], card, "C0TRIAGE").to_dict()
    assert view["type"] == "modal" and view["blocks"] == as_json(card.blocks)
    assert '"c":"C0TRIAGE"' in view["private_metadata"]
    check_snapshot("modal_card", view)
