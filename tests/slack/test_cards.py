"""Cards from the stream, their buttons and modals, over HTTP against `escbot serve`."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from blocks.actions import Action, Callback
from bot.db.models import CardRow
from tests.conftest import ADMIN, GROUP_MEMBER, OPERATOR, STRANGER
from tests.slack.conftest import Bot, response_url_of, wait_until
from tests.support.fake_slack import Message


def _permalink(bot: Bot, card: Message) -> str | None:
    with bot.store.reading() as session:
        return session.execute(
            select(CardRow.permalink).where(CardRow.channel == card.channel, CardRow.ts == card.ts)
        ).scalar_one_or_none()


def card_text(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def buttons(message: Message) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks or []
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def refreshed(bot: Bot, card: Message, check) -> Message:  # type: ignore[no-untyped-def]
    return wait_until(
        lambda: (m := bot.fake.message(card.channel, card.ts)) and check(m) and m,
        what="the card to be updated",
    )


def test_the_card_carries_what_a_reviewer_needs(bot: Bot) -> None:
    data, card = bot.escalate()
    text = card_text(card)
    for needle in (
        "billing-agent",
        data["task_id"],
        "refund",
        "high",
        "62%",
        "refund above the 500 EUR limit",
        "issue_refund",
        "740",
        "EUR",
        "lookup_order",
        "paid",
        "refunds.limit",
        "escalates to *review*",
        data["escalation_id"],
    ):
        assert needle in text, needle
    assert buttons(card) == [
        Action.ACKNOWLEDGE,
        Action.APPROVE,
        Action.EDIT,
        Action.REJECT,
        Action.REDIRECT,
        Action.TERMINATE,
        Action.ESCALATE,
    ]
    assert card.channel == "C0TRIAGE" and data["task_id"] in card.text
    # Its permalink is derived (the workspace's URL from auth.test), not asked for.
    expected = f"https://fake-slack.test/archives/{card.channel}/p{card.ts.replace('.', '')}"
    permalink = wait_until(
        lambda: _permalink(bot, card), what="the card's permalink in the database"
    )
    assert permalink == expected
    assert not bot.fake.calls("chat.getPermalink")


def test_approve_updates_the_card_in_place_and_tells_the_agent(bot: Bot) -> None:
    data, card = bot.escalate()
    assert bot.click(Action.APPROVE, card, OPERATOR).status_code == 200
    updated = refreshed(bot, card, lambda m: "Approved" in card_text(m))
    assert buttons(updated) == []
    assert f"<@{OPERATOR}>" in card_text(updated) and "after the escalation" in card_text(updated)
    decision = json.loads(bot.rdb.get(bot.key(f"decision:{data['escalation_id']}")) or "{}")
    assert decision["decision"] == "approved" and decision["by"] == OPERATOR


def test_acknowledge_keeps_the_decision_buttons(bot: Bot) -> None:
    _data, card = bot.escalate()
    bot.click(Action.ACKNOWLEDGE, card, GROUP_MEMBER)
    updated = refreshed(bot, card, lambda m: "Acknowledged by" in card_text(m))
    assert Action.ACKNOWLEDGE not in buttons(updated) and Action.APPROVE in buttons(updated)


def test_terminate_kills_the_task_and_is_announced(bot: Bot) -> None:
    data, card = bot.escalate()
    bot.click(Action.TERMINATE, card, OPERATOR)
    refreshed(bot, card, lambda m: "Terminated" in card_text(m))
    kill = json.loads(bot.rdb.get(bot.key(f"kill:{data['task_id']}")) or "{}")
    assert kill["escalation_id"] == data["escalation_id"]
    wait_until(
        lambda: [
            m
            for m in bot.fake.messages("C0TRIAGE")
            if "terminated" in m.text and data["task_id"] in m.text
        ],
        what="the termination announcement",
    )


def open_modal(bot: Bot, action: Action, card: Message) -> dict:
    response = bot.click(action, card, OPERATOR, trigger_id=f"trigger-{action}-{card.ts}")
    assert response.status_code == 200
    [call] = bot.fake.wait_for(
        "views.open", lambda c: c.params.get("trigger_id") == f"trigger-{action}-{card.ts}"
    )
    return call.params["view"]


def test_reject_opens_a_modal_and_the_feedback_reaches_the_agent(bot: Bot) -> None:
    data, card = bot.escalate()
    view = open_modal(bot, Action.REJECT, card)
    assert view["callback_id"] == Callback.REJECT
    empty = bot.slack.submit_view(
        callback_id=Callback.REJECT,
        user_id=OPERATOR,
        values={"comment": {"value": {"type": "plain_text_input", "value": "  "}}},
        private_metadata=view["private_metadata"],
    )
    assert empty.json()["response_action"] == "errors"  # required: the modal stays open
    bot.slack.submit_view(
        callback_id=Callback.REJECT,
        user_id=OPERATOR,
        values={"comment": {"value": {"type": "plain_text_input", "value": "Offer 500 EUR."}}},
        private_metadata=view["private_metadata"],
    )
    updated = refreshed(bot, card, lambda m: "Rejected" in card_text(m))
    assert "Offer 500 EUR." in card_text(updated)
    decision = json.loads(bot.rdb.get(bot.key(f"decision:{data['escalation_id']}")) or "{}")
    assert decision == decision | {"decision": "rejected", "comment": "Offer 500 EUR."}


def test_redirect_opens_a_modal_and_the_instruction_reaches_the_agent(bot: Bot) -> None:
    data, card = bot.escalate()
    view = open_modal(bot, Action.REDIRECT, card)
    bot.slack.submit_view(
        callback_id=Callback.REDIRECT,
        user_id=OPERATOR,
        values={"instruction": {"value": {"type": "plain_text_input", "value": "Ask first."}}},
        private_metadata=view["private_metadata"],
    )
    refreshed(bot, card, lambda m: "Redirected" in card_text(m))
    decision = json.loads(bot.rdb.get(bot.key(f"decision:{data['escalation_id']}")) or "{}")
    assert decision["instruction"] == "Ask first."
    [(_, entry)] = bot.rdb.xrange(bot.key(f"inbox:{data['task_id']}"))
    assert entry["kind"] == "redirect" and entry["escalation_id"] == data["escalation_id"]


def test_a_second_click_changes_nothing_and_says_who_decided(bot: Bot) -> None:
    data, card = bot.escalate()
    bot.click(Action.APPROVE, card, OPERATOR)
    refreshed(bot, card, lambda m: "Approved" in card_text(m))
    for action in (Action.REJECT, Action.TERMINATE, Action.APPROVE):
        reply = bot.reply_to(bot.click(action, card, ADMIN))
        assert "Already *approved*" in reply["text"] and f"<@{OPERATOR}>" in reply["text"]
        assert reply["response_type"] == "ephemeral" and not reply.get("replace_original")
    assert not bot.rdb.exists(bot.key(f"kill:{data['task_id']}"))
    assert [r["action"] for r in bot.audit(escalation_id=data["escalation_id"])] == ["approve"]


def test_a_strangers_click_is_refused_audited_and_changes_nothing(bot: Bot) -> None:
    data, card = bot.escalate()
    reply = bot.reply_to(bot.click(Action.APPROVE, card, STRANGER))
    assert "not allowed" in reply["text"] and reply["response_type"] == "ephemeral"
    [row] = bot.wait_audit(escalation_id=data["escalation_id"], action="denied")
    assert row["actor"] == STRANGER
    assert not bot.rdb.exists(bot.key(f"decision:{data['escalation_id']}"))
    assert buttons(bot.fake.message(card.channel, card.ts)) == buttons(card)


@pytest.mark.parametrize("action", [Action.REJECT, Action.REDIRECT])
def test_a_stranger_is_refused_at_the_click_not_after_filling_the_modal(
    bot: Bot, action: Action
) -> None:
    data, card = bot.escalate()
    trigger = f"trigger-stranger-{action}-{card.ts}"
    reply = bot.reply_to(bot.click(action, card, STRANGER, trigger_id=trigger))
    assert reply["response_type"] == "ephemeral" and not reply.get("replace_original")
    verdict = action.value.removeprefix("escalation.")
    assert f"not allowed: {verdict} needs the operator role" in reply["text"]
    [row] = bot.wait_audit(escalation_id=data["escalation_id"], action="denied")
    assert row["actor"] == STRANGER and row["task_id"] == data["task_id"]
    assert row["detail"] == {"attempted": verdict}
    assert not [c for c in bot.fake.calls("views.open") if c.params.get("trigger_id") == trigger]
    assert not bot.rdb.exists(bot.key(f"decision:{data['escalation_id']}"))
    assert [r["action"] for r in bot.audit(escalation_id=data["escalation_id"])] == ["denied"]


@pytest.mark.parametrize("verdicts", [("approve",), ("approve", "terminate")])
def test_twenty_concurrent_clicks_make_one_decision(bot: Bot, verdicts: tuple[str, ...]) -> None:
    data, card = bot.escalate()
    actions = [Action.APPROVE if v == "approve" else Action.TERMINATE for v in verdicts]
    barrier = threading.Barrier(20)
    statuses: list[int | str] = []
    answered: list[str] = []

    def click(i: int) -> None:
        barrier.wait()
        try:
            response = bot.click(actions[i % len(actions)], card, OPERATOR if i % 2 else ADMIN)
            statuses.append(response.status_code)
            answered.append(response_url_of(response.request.body).rsplit("/", 1)[-1])
        except Exception as exc:
            statuses.append(repr(exc))

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20
    refreshed(bot, card, lambda m: not buttons(m))
    decisions = [
        r
        for r in bot.audit(escalation_id=data["escalation_id"])
        if r["action"] in {"approve", "terminate"}
    ]
    assert len(decisions) == 1
    winner = decisions[0]["actor"]

    def losers() -> list[dict]:
        return [r for i in answered for r in bot.fake.responses(i) if "Already" in r["text"]]

    told = wait_until(lambda: len(losers()) == 19 and losers(), what="19 ephemeral answers")
    assert all(f"<@{winner}>" in r["text"] and r["response_type"] == "ephemeral" for r in told)


def test_full_context_opens_a_modal_for_an_oversized_escalation(bot: Bot) -> None:
    _data, card = bot.escalate(
        reason="Limit exceeded. " * 400,
        context={
            "tool_calls": [
                {"name": f"tool_{i}", "args": {}, "result": "r" * 900} for i in range(12)
            ],
            "state": {"memory": ["x"] * 200},
        },
    )
    assert Action.FULL_CONTEXT in buttons(card)
    view = open_modal(bot, Action.FULL_CONTEXT, card)
    assert "tool_11" in json.dumps(view) and len(view["blocks"]) <= 100
