"""Replies in a card's thread reach the agent once; the agent's words reach the thread."""

from __future__ import annotations

import uuid

from bot.sandbox.slack_records import BOT_ID, BOT_USER_ID
from tests.conftest import GROUP_MEMBER, OPERATOR, STRANGER
from tests.slack.conftest import Bot, wait_until
from tests.support.fake_slack import Message


def reply(bot: Bot, card: Message, text: str, user: str | None, **extra: object) -> dict:
    """A reply as Slack stores and announces it: a message in the card's thread."""
    seeded = bot.fake.seed_message(
        card.channel,
        text,
        user=user or "",
        thread_ts=card.ts,
        bot_id=extra.get("bot_id"),  # type: ignore[arg-type]
    )
    return bot.slack.message_event(
        text=text,
        user=user,
        channel=card.channel,
        ts=seeded.ts,
        thread_ts=card.ts,
        **extra,  # type: ignore[arg-type]
    )


def inbox(bot: Bot, task_id: str) -> list[dict[str, str]]:
    return [fields for _id, fields in bot.rdb.xrange(bot.key(f"inbox:{task_id}"))]


def test_a_persons_reply_reaches_the_agent_and_is_marked(bot: Bot) -> None:
    data, card = bot.escalate()
    event = reply(bot, card, "Customer called: &lt;refund&gt; is fine", GROUP_MEMBER)
    assert bot.slack.event(event).status_code == 200
    [entry] = wait_until(lambda: inbox(bot, data["task_id"]), what="the inbox entry")
    assert entry == {
        "kind": "message",
        "text": "Customer called: <refund> is fine",
        "author": GROUP_MEMBER,
        "source": "operator",
        "at": entry["at"],
        "escalation_id": data["escalation_id"],
    }
    wait_until(
        lambda: "incoming_envelope" in bot.fake.message(card.channel, event["ts"]).reactions,
        what="the delivered mark",
    )
    [row] = bot.wait_audit(action="message", task_id=data["task_id"])
    assert row["actor"] == GROUP_MEMBER


def test_a_retried_event_is_relayed_once(bot: Bot) -> None:
    data, card = bot.escalate()
    event = reply(bot, card, "only once please", OPERATOR)
    event_id = f"Ev{uuid.uuid4().hex[:10].upper()}"
    bot.slack.event(event, event_id=event_id)
    bot.slack.event(event, event_id=event_id, retry_num=1, retry_reason="http_timeout")
    bot.slack.event(event, event_id=event_id, retry_num=2, retry_reason="http_timeout")
    wait_until(lambda: inbox(bot, data["task_id"]), what="the inbox entry")
    bot.wait_audit(action="message", task_id=data["task_id"])
    # The retries are handled (marked) but relay nothing more.
    wait_until(
        lambda: (
            len(
                [
                    c
                    for c in bot.fake.calls("reactions.add")
                    if c.params.get("timestamp") == event["ts"]
                ]
            )
            >= 3
        ),
        what="marks",
    )
    assert len(inbox(bot, data["task_id"])) == 1
    assert len(bot.audit(action="message", task_id=data["task_id"])) == 1


def test_bot_messages_are_ignored_this_one_included(bot: Bot) -> None:
    data, card = bot.escalate()
    bot.slack.event(reply(bot, card, "beep", None, bot_id="B0OTHER", subtype="bot_message"))
    bot.slack.event(reply(bot, card, "I am the bot", BOT_USER_ID, bot_id=BOT_ID))
    bot.slack.event(
        bot.slack.message_event(
            text="edited",
            user=OPERATOR,
            channel=card.channel,
            thread_ts=card.ts,
            subtype="message_changed",
        )
    )
    marker = reply(bot, card, "a person, after the bots", OPERATOR)
    bot.slack.event(marker)
    wait_until(lambda: inbox(bot, data["task_id"]), what="the person's entry")
    assert [e["text"] for e in inbox(bot, data["task_id"])] == ["a person, after the bots"]


def test_a_reply_outside_a_card_thread_goes_nowhere(bot: Bot) -> None:
    parent = bot.fake.seed_message("C0TRIAGE", "lunch?", user=OPERATOR)
    bot.fake.seed_message("C0TRIAGE", "pizza?", user=OPERATOR, thread_ts=parent.ts)
    event = bot.slack.message_event(
        text="pizza?", user=OPERATOR, channel="C0TRIAGE", thread_ts=parent.ts
    )
    assert bot.slack.event(event).status_code == 200
    data, card = bot.escalate()  # a later relay proves the event was handled by then
    bot.slack.event(reply(bot, card, "after", OPERATOR))
    bot.wait_audit(action="message", task_id=data["task_id"])
    assert [r for r in bot.audit() if r["reason"] == "pizza?"] == []
    assert not any(
        fields["text"] == "pizza?"
        for key in bot.rdb.scan_iter(match=bot.key("inbox:*"))
        for _id, fields in bot.rdb.xrange(key)
    )


def test_a_strangers_reply_is_not_relayed_and_they_are_told(bot: Bot) -> None:
    data, card = bot.escalate()
    event = reply(bot, card, "do something silly", STRANGER)
    bot.slack.event(event)
    [row] = bot.wait_audit(action="denied", task_id=data["task_id"])
    assert row["actor"] == STRANGER
    ephemeral = wait_until(lambda: bot.fake.ephemerals(card.channel, STRANGER), what="answer")
    assert "not allowed" in ephemeral[-1].text
    assert inbox(bot, data["task_id"]) == []


def test_the_agents_words_are_posted_in_the_cards_thread(bot: Bot) -> None:
    data, card = bot.escalate()
    bot.rdb.xadd(
        bot.key("agent-events"),
        {
            "task_id": data["task_id"],
            "escalation_id": data["escalation_id"],
            "text": "Waiting for the carrier's answer.",
        },
    )
    bot.rdb.xadd(bot.key("agent-events"), {"task_id": data["task_id"], "text": "No id given."})
    posted = wait_until(
        lambda: (
            len(bot.fake.thread(card.channel, card.ts)) >= 2
            and bot.fake.thread(card.channel, card.ts)
        ),
        what="the agent's words in the thread",
    )
    texts = [m.text for m in posted]
    assert any("Waiting for the carrier" in t and "billing-agent" in t for t in texts)
    assert any("No id given." in t for t in texts)
