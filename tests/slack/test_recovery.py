"""Recovery through Slack (CONTRACTS §11): the pause's announcement with *Resume*,
*Restart with changes* and *Abandon*, their modals, and `/agent restart` and
`/agent abandon`; `escbot serve` over HTTP against the fake Slack, on both databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from blocks.actions import Action, Callback, Field_
from tests.conftest import OPERATOR, STRANGER
from tests.slack.conftest import Bot, make_bot
from tests.slack.test_commands import ask
from tests.support.databases import DatabaseFactory
from tests.support.fake_slack import Message
from tests.support.waiting import wait_until


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bot(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[Bot]:
    kind = "sqlite" if request.param == "sqlite" else "pg"
    databases: DatabaseFactory = request.getfixturevalue(f"{kind}_databases")
    yield from make_bot(tmp_path_factory.mktemp("bot"), databases.fresh(), redis_url)


def task() -> str:
    return f"refund-{uuid.uuid4().hex[:8]}"


def announced(bot: Bot, needle: str, after: int = 0) -> Message:
    """The first tier's message with `needle`, the `after`-th one on (0: the first)."""

    def find() -> Message | None:
        found = [m for m in bot.fake.messages("C0TRIAGE") if needle in json.dumps(m.blocks)]
        return found[after] if len(found) > after else None

    return wait_until(find, 10, f"an announcement with {needle!r}")


def paused(bot: Bot, task_id: str, nth: int = 0) -> Message:
    assert "Paused" in ask(bot, f"pause {task_id} the amount looks wrong")
    return announced(bot, f"`{task_id}` paused", nth)


def open_modal(bot: Bot, action: str, message: Message, user: str = OPERATOR) -> dict[str, Any]:
    trigger = f"trigger-{action}-{message.ts}-{user}"
    assert bot.click(action, message, user, trigger_id=trigger).status_code == 200
    [call] = bot.fake.wait_for("views.open", lambda c: c.params.get("trigger_id") == trigger)
    view: dict[str, Any] = call.params["view"]
    return view


def submit(bot: Bot, callback: str, field: Field_, view: dict[str, Any], text: str | None) -> Any:
    return bot.slack.submit_view(
        callback_id=callback,
        user_id=OPERATOR,
        values={field.value: {Field_.VALUE.value: {"type": "plain_text_input", "value": text}}},
        private_metadata=view["private_metadata"],
    )


def outcomes_of(bot: Bot, task_id: str) -> list[dict[str, str]]:
    entries = bot.rdb.xrange(bot.key("outcomes"))
    return [dict(fields) for _id, fields in entries if fields.get("task_id") == task_id]


def test_the_pause_announcement_offers_the_three_ways_on_and_resume_works(bot: Bot) -> None:
    tid = task()
    message = paused(bot, tid)
    actions = [
        e["action_id"] for b in message.blocks for e in b.get("elements", []) if "action_id" in e
    ]
    assert actions == [Action.TASK_RESUME, Action.TASK_RESTART, Action.TASK_ABANDON]
    reply = bot.reply_to(bot.click(Action.TASK_RESUME, message, OPERATOR))
    assert "Resumed" in reply["text"]
    assert not bot.rdb.exists(bot.key(f"pause:{tid}"))
    again = bot.reply_to(bot.click(Action.TASK_RESUME, message, OPERATOR))
    assert "not paused" in again["text"] and "Nothing was changed" in again["text"]


def test_restart_with_changes_asks_the_instruction_then_restarts(bot: Bot) -> None:
    tid = task()
    message = paused(bot, tid)
    view = open_modal(bot, Action.TASK_RESTART, message)
    assert view["callback_id"] == Callback.TASK_RESTART
    refused = submit(bot, Callback.TASK_RESTART, Field_.INSTRUCTION, view, "   ")
    assert refused.json()["response_action"] == "errors"
    assert bot.rdb.exists(bot.key(f"pause:{tid}"))

    accepted = submit(bot, Callback.TASK_RESTART, Field_.INSTRUCTION, view, "refund 500, not 740")
    assert accepted.status_code == 200
    [row] = bot.wait_audit(action="restart", task_id=tid)
    assert row["actor"] == OPERATOR and row["reason"] == "refund 500, not 740"
    [(_id, entry)] = bot.rdb.xrange(bot.key(f"inbox:{tid}"))
    assert entry["kind"] == "restart" and entry["text"] == "refund 500, not 740"
    assert not bot.rdb.exists(bot.key(f"pause:{tid}"))
    announced(bot, f"`{tid}` restarted")


def test_abandon_asks_an_optional_explanation_then_abandons(bot: Bot) -> None:
    tid = task()
    message = paused(bot, tid)
    view = open_modal(bot, Action.TASK_ABANDON, message)
    assert view["callback_id"] == Callback.TASK_ABANDON
    sent = submit(bot, Callback.TASK_ABANDON, Field_.EXPLANATION, view, "We could not verify it.")
    assert sent.status_code == 200
    [row] = bot.wait_audit(action="abandon", task_id=tid)
    assert row["reason"] == "abandoned: We could not verify it."
    kill = json.loads(bot.rdb.get(bot.key(f"kill:{tid}")) or "{}")
    assert kill["reason"] == "abandoned: We could not verify it."
    [outcome] = outcomes_of(bot, tid)
    assert outcome["status"] == "abandoned" and outcome["notice"] == "We could not verify it."
    assert outcome["source"] == "bot" and outcome["by"] == OPERATOR
    announced(bot, f"`{tid}` abandoned")

    other = task()
    view = open_modal(bot, Action.TASK_ABANDON, paused(bot, other))
    assert submit(bot, Callback.TASK_ABANDON, Field_.EXPLANATION, view, None).status_code == 200
    bot.wait_audit(action="abandon", task_id=other)
    [outcome] = outcomes_of(bot, other)
    assert outcome["notice"] == "Your request could not be completed and has been closed."


def test_a_stranger_cannot_open_the_modals_and_is_audited(bot: Bot) -> None:
    tid = task()
    message = paused(bot, tid)
    for action, verb in ((Action.TASK_RESTART, "restart"), (Action.TASK_ABANDON, "abandon")):
        trigger = f"t-stranger-{verb}-{tid}"
        reply = bot.reply_to(bot.click(action, message, STRANGER, trigger_id=trigger))
        assert "🚫" in reply["text"] and "Nothing was changed" in reply["text"]
        assert not [
            c for c in bot.fake.calls("views.open") if c.params.get("trigger_id") == trigger
        ]
    denied = bot.wait_audit(2, action="denied", task_id=tid)
    assert [r["detail"]["attempted"] for r in denied] == ["restart", "abandon"]
    assert bot.rdb.exists(bot.key(f"pause:{tid}"))


def test_the_slash_commands_restart_and_abandon(bot: Bot) -> None:
    tid = task()
    ask(bot, f"pause {tid}")
    assert "Restarted" in ask(bot, f"restart {tid} start over, in EUR")
    assert not bot.rdb.exists(bot.key(f"pause:{tid}"))
    assert "not paused" in ask(bot, f"restart {tid} again")
    assert "Abandoned" in ask(bot, f"abandon {tid} Sorry, we cannot do this.")
    assert "already abandoned" in ask(bot, f"abandon {tid}")
    assert [o["status"] for o in outcomes_of(bot, tid)] == ["abandoned"]

    ghost = task()
    assert "never seen" in ask(bot, f"restart {ghost} go")
    assert "never seen" in ask(bot, f"abandon {ghost}")
    assert "needs an instruction" in ask(bot, f"restart {tid}")
    assert bot.audit(task_id=ghost) == []

    stranger = ask(bot, f"abandon {tid} no", user=STRANGER)
    assert "not allowed" in stranger
    [row] = bot.wait_audit(action="denied", task_id=tid, actor=STRANGER)
    assert row["detail"]["attempted"] == "abandon"
