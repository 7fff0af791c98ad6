"""Edit & approve, quorums and escalate now through Slack: `escbot serve` over HTTP
against the fake Slack, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from blocks.actions import Action, Callback, Field_
from tests.conftest import ADMIN, GROUP_MEMBER, OPERATOR, STRANGER
from tests.slack.conftest import Bot, make_bot
from tests.slack.test_cards import buttons, card_text, refreshed
from tests.support.databases import DatabaseFactory
from tests.support.fake_slack import Message
from tests.support.waiting import wait_until

SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "maximum": 740}},
    "required": ["amount"],
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bot(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[Bot]:
    kind = "sqlite" if request.param == "sqlite" else "pg"
    databases: DatabaseFactory = request.getfixturevalue(f"{kind}_databases")
    yield from make_bot(tmp_path_factory.mktemp("bot"), databases.fresh(), redis_url)


def decision(bot: Bot, escalation_id: str) -> dict[str, Any]:
    return dict(json.loads(bot.rdb.get(bot.key(f"decision:{escalation_id}")) or "{}"))


def open_edit(bot: Bot, card: Message, user: str = OPERATOR) -> dict[str, Any]:
    trigger = f"trigger-edit-{card.ts}-{user}"
    assert bot.click(Action.EDIT, card, user, trigger_id=trigger).status_code == 200
    [call] = bot.fake.wait_for("views.open", lambda c: c.params.get("trigger_id") == trigger)
    view: dict[str, Any] = call.params["view"]
    return view


def submit_edit(bot: Bot, view: dict[str, Any], text: str, user: str = OPERATOR) -> Any:
    return bot.slack.submit_view(
        callback_id=Callback.EDIT,
        user_id=user,
        values={
            Field_.ARGS.value: {Field_.VALUE.value: {"type": "plain_text_input", "value": text}},
            Field_.COMMENT.value: {Field_.VALUE.value: {"type": "plain_text_input", "value": None}},
        },
        private_metadata=view["private_metadata"],
    )


def ephemeral_to(bot: Bot, user: str, needle: str) -> str:
    [call] = bot.fake.wait_for(
        "chat.postEphemeral",
        lambda c: c.params.get("user") == user and needle in str(c.params.get("text")),
    )
    return str(call.params["text"])


def test_edit_and_approve_checks_the_json_in_the_modal_then_the_agent_gets_it(bot: Bot) -> None:
    action = {"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}}
    data, card = bot.escalate(action=action | {"schema": SCHEMA})
    assert buttons(card).index(Action.EDIT) == buttons(card).index(Action.APPROVE) + 1
    view = open_edit(bot, card)
    assert view["callback_id"] == Callback.EDIT
    initial = view["blocks"][1]["element"]["initial_value"]
    assert json.loads(initial) == {"amount": 740, "currency": "EUR"}

    for typed, error in (
        ('{"amount": 500,', "not valid JSON"),
        ("[500]", "must be a JSON object"),
        ('{"amount": 900}', "schema at `amount`: 900 is greater than the maximum of 740"),
    ):
        refused = submit_edit(bot, view, typed)
        assert refused.json()["response_action"] == "errors", typed
        assert error in refused.json()["errors"][Field_.ARGS.value]
    assert decision(bot, data["escalation_id"]) == {}

    assert submit_edit(bot, view, '{"amount": 500, "currency": "EUR"}').status_code == 200
    updated = refreshed(bot, card, lambda m: "Approved" in card_text(m))
    assert "Arguments edited by" in card_text(updated) and "amount: 740 → 500" in card_text(updated)
    assert decision(bot, data["escalation_id"])["args"] == {"amount": 500, "currency": "EUR"}
    [row] = bot.audit(escalation_id=data["escalation_id"], action="approve")
    assert row["detail"]["proposed"]["amount"] == 740 and row["detail"]["approved"]["amount"] == 500

    again = submit_edit(bot, view, '{"amount": 100, "currency": "EUR"}', user=ADMIN)
    assert again.status_code == 200
    text = ephemeral_to(bot, ADMIN, "Already *approved*")
    assert f"<@{OPERATOR}>" in text
    assert decision(bot, data["escalation_id"])["args"]["amount"] == 500


def test_a_stranger_cannot_open_the_edit_modal(bot: Bot) -> None:
    data, card = bot.escalate()
    reply = bot.reply_to(bot.click(Action.EDIT, card, STRANGER, trigger_id="t-stranger"))
    assert "🚫" in reply["text"]
    opened = [c for c in bot.fake.calls("views.open") if c.params.get("trigger_id") == "t-stranger"]
    assert opened == []
    assert [r["action"] for r in bot.audit(escalation_id=data["escalation_id"])] == ["denied"]


def test_the_card_counts_a_quorum_and_who(bot: Bot) -> None:
    data, card = bot.escalate(approvals=2)
    assert "Needs 2 approvals" in card_text(card)
    bot.click(Action.APPROVE, card, OPERATOR)
    counted = refreshed(bot, card, lambda m: "1 of 2 approvals so far" in card_text(m))
    assert f"<@{OPERATOR}>" in card_text(counted) and "Approve (1 of 2)" in card_text(counted)
    again = bot.reply_to(bot.click(Action.APPROVE, counted, OPERATOR))
    assert "already approved" in again["text"] and "another person" in again["text"]
    assert decision(bot, data["escalation_id"]) == {}
    bot.click(Action.APPROVE, counted, GROUP_MEMBER)
    done = refreshed(bot, card, lambda m: "Approved" in card_text(m))
    assert "2 of 2 approvals" in card_text(done) and buttons(done) == []
    assert decision(bot, data["escalation_id"])["approvals"] == [OPERATOR, GROUP_MEMBER]


def test_the_escalate_button_and_command_climb_and_stop_at_the_last_tier(bot: Bot) -> None:
    data, card = bot.escalate()
    eid = data["escalation_id"]
    reply = bot.reply_to(bot.click(Action.ESCALATE, card, OPERATOR))
    assert "Escalated" in reply["text"] and "to review" in reply["text"]
    review = bot.card(eid, "C0REVIEW")
    assert Action.ESCALATE in buttons(review)
    refreshed(bot, card, lambda m: "Escalated to *review*" in card_text(m))

    moved = bot.reply_to(bot.command(f"escalate {eid} the customer is on the phone", ADMIN))
    assert "to incident" in moved["text"]
    incident = bot.card(eid, "C0INCIDENT")
    assert Action.ESCALATE not in buttons(incident)
    [row] = bot.audit(escalation_id=eid, actor=ADMIN, action="escalate")
    assert row["reason"] == "the customer is on the phone"

    refused = bot.reply_to(bot.command(f"escalate {eid}", OPERATOR))
    assert "last tier" in refused["text"] and "Nothing was changed" in refused["text"]
    denied = bot.reply_to(bot.command(f"escalate {eid}", STRANGER))
    assert "🚫" in denied["text"]
    wait_until(lambda: bot.audit(escalation_id=eid, action="denied"), what="the denial row")
    assert len(bot.audit(escalation_id=eid, action="escalate")) == 2
