"""Sampled review in a running `escbot serve --http`: the card of a policy decision and of
a finished task, *Looks right* and *Flag* (its modal, flag-and-pause) over HTTP, strangers
refused, and a card owed while Slack is down posted once it is back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from blocks.actions import Action, Callback, Field_
from bot.db.models import OutboxRow
from tests.conftest import ADMIN, OPERATOR, STRANGER
from tests.slack.conftest import Bot, running_bot
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation_data
from tests.support.fake_slack import Message
from tests.support.waiting import wait_until
from tests.test_review_verdicts import REVIEWED_POLICY


@pytest.fixture(scope="module")
def reviewing_bot(
    tmp_path_factory: pytest.TempPathFactory, sqlite_databases: DatabaseFactory, redis_url: str
) -> Iterator[Bot]:
    with running_bot(
        tmp_path_factory.mktemp("reviews"),
        sqlite_databases.fresh(),
        redis_url,
        policy=REVIEWED_POLICY,
    ) as bot:
        yield bot


def text_of(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def buttons(message: Message) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def redrawn(bot: Bot, card: Message, needle: str) -> Message:
    return wait_until(
        lambda: (m := bot.fake.message(card.channel, card.ts)) and needle in text_of(m) and m,
        what=f"the review card redrawn with {needle!r}",
    )


def finish(bot: Bot, task_id: str) -> None:
    """What the SDK's guard.finish() writes: the task completed."""
    bot.rdb.xadd(
        bot.key("outcomes"),
        {
            "task_id": task_id,
            "agent": "billing-agent",
            "status": "completed",
            "notice": "Your refund is on its way.",
            "at": datetime.now(UTC).isoformat(),
            "source": "agent",
            "task_type": "refund",
        },
    )


def test_a_policy_decision_sampled_for_review_gets_a_card_and_looks_right(
    reviewing_bot: Bot,
) -> None:
    bot = reviewing_bot
    data = escalation_data(task_type="support", action={"name": "send_reply", "args": {"to": "c"}})
    bot.rdb.xadd(bot.key("escalations"), {"payload": json.dumps(data)})
    card = bot.card(data["escalation_id"], "C0TRIAGE")
    assert "send_reply" in text_of(card) and "by the policy" in text_of(card)
    assert buttons(card) == [Action.REVIEW_LOOKS_RIGHT, Action.REVIEW_FLAG]

    assert bot.click(Action.REVIEW_LOOKS_RIGHT, card, OPERATOR).status_code == 200
    after = redrawn(bot, card, f"✅ *Looks right* by <@{OPERATOR}>")
    assert buttons(after) == []
    [row] = bot.wait_audit(action="review", escalation_id=data["escalation_id"])
    assert row["actor"] == OPERATOR and row["detail"]["verdict"] == "looks_right"

    reply = bot.reply_to(bot.click(Action.REVIEW_FLAG, card, ADMIN, trigger_id="t-late"))
    assert "Already reviewed (*looks right*)" in reply["text"]
    assert reply["response_type"] == "ephemeral"
    assert not bot.fake.calls("views.open")


def test_a_finished_task_gets_a_card_and_a_flag_pauses_it(reviewing_bot: Bot) -> None:
    bot = reviewing_bot
    task_id = f"refund-{uuid.uuid4().hex[:6]}"
    finish(bot, task_id)
    card = bot.card(task_id, "C0TRIAGE")
    assert "Your refund is on its way." in text_of(card)

    refused = bot.reply_to(bot.click(Action.REVIEW_FLAG, card, STRANGER, trigger_id="t-no"))
    assert "not allowed: review needs the operator role" in refused["text"]
    bot.wait_audit(action="denied", actor=STRANGER, task_id=task_id)

    trigger = f"t-flag-{task_id}"
    bot.click(Action.REVIEW_FLAG, card, OPERATOR, trigger_id=trigger)
    [opened] = bot.fake.wait_for("views.open", lambda c: c.params.get("trigger_id") == trigger)
    view = opened.params["view"]
    assert view["callback_id"] == Callback.REVIEW_FLAG

    def submit(text: str, pause: str, user: str = OPERATOR):  # type: ignore[no-untyped-def]
        values = {
            Field_.WRONG.value: {"value": {"type": "plain_text_input", "value": text}},
            Field_.PAUSE.value: {
                "value": {"type": "radio_buttons", "selected_option": {"value": pause}}
            },
        }
        return bot.slack.submit_view(
            callback_id=Callback.REVIEW_FLAG,
            user_id=user,
            values=values,
            private_metadata=view["private_metadata"],
        )

    assert submit("  ", "task").json()["response_action"] == "errors"  # the modal stays
    submit("it promised a date it cannot keep", "none", user=STRANGER)
    wait_until(
        lambda: bot.fake.ephemerals(card.channel, STRANGER), what="the stranger told privately"
    )
    assert submit("it promised a date it cannot keep", "task").status_code == 200
    after = redrawn(bot, card, f"🚩 *Flagged* by <@{OPERATOR}>")
    assert buttons(after) == []
    said = text_of(after)
    assert "it promised a date it cannot keep" in said and f"⏸ Paused `{task_id}`" in said
    value = json.loads(
        wait_until(lambda: bot.rdb.get(bot.key(f"pause:{task_id}")), what="the pause key")
    )
    assert value["by"] == OPERATOR
    actions = [row["action"] for row in bot.audit(task_id=task_id)]
    assert actions[-2:] == ["review", "pause"] and actions.count("review") == 1


def test_a_review_card_owed_while_slack_is_down_is_posted_once_it_is_back(
    reviewing_bot: Bot,
) -> None:
    bot = reviewing_bot
    task_id = f"refund-{uuid.uuid4().hex[:6]}"
    bot.fake.set_down(True)
    try:
        finish(bot, task_id)

        def attempted() -> bool:
            with bot.store.reading() as session:
                attempts = session.scalar(
                    sa.select(sa.func.max(OutboxRow.attempts)).where(
                        OutboxRow.topic == "review", OutboxRow.last_error.is_not(None)
                    )
                )
            return bool(attempts)

        wait_until(attempted, what="a failed attempt to post the review card")
    finally:
        bot.fake.set_down(False)
    card = bot.card(task_id, "C0TRIAGE", timeout=20)
    assert buttons(card) == [Action.REVIEW_LOOKS_RIGHT, Action.REVIEW_FLAG]
