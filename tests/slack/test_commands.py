"""`/agent` over HTTP: each verb, and refusals that say why and change nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import ADMIN, ADMIN2, GROUP_MEMBER, OPERATOR, STRANGER
from tests.slack.conftest import Bot, wait_until


def task() -> str:
    return f"refund-{uuid.uuid4().hex[:8]}"


def ask(bot: Bot, text: str, user: str = OPERATOR) -> str:
    reply = bot.reply_to(bot.command(text, user))
    assert reply.get("response_type", "ephemeral") == "ephemeral", reply
    return reply["text"]


def test_kill_then_revive(bot: Bot) -> None:
    tid = task()
    assert "Killed" in ask(bot, f"kill {tid} runaway loop")
    value = json.loads(bot.rdb.get(bot.key(f"kill:{tid}")) or "{}")
    assert value["reason"] == "runaway loop" and value["by"] == OPERATOR
    announced = wait_until(
        lambda: [m for m in bot.fake.messages("C0TRIAGE") if tid in m.text and "killed" in m.text],
        what="the kill announcement",
    )
    assert f"<@{OPERATOR}>" in json.dumps(announced[0].blocks)
    assert "already killed" in ask(bot, f"kill {tid}", GROUP_MEMBER)
    assert "Revived" in ask(bot, f"revive {tid}")
    assert not bot.rdb.exists(bot.key(f"kill:{tid}"))


def test_pause_resume_and_redirect(bot: Bot) -> None:
    tid = task()
    assert "Paused" in ask(bot, f"pause {tid} checking the ledger")
    assert bot.rdb.exists(bot.key(f"pause:{tid}"))
    assert "Resumed" in ask(bot, f"resume {tid}")
    assert not bot.rdb.exists(bot.key(f"pause:{tid}"))
    assert "not paused" in ask(bot, f"resume {tid}")
    assert "Redirect delivered" in ask(bot, f"redirect {tid} refund only 500 EUR & stop")
    [(_, entry)] = bot.rdb.xrange(bot.key(f"inbox:{tid}"))
    assert entry["kind"] == "redirect" and entry["text"] == "refund only 500 EUR & stop"
    assert entry["author"] == OPERATOR and entry["source"] == "operator"


def test_kill_all_needs_an_admin_and_revive_all_two(bot: Bot) -> None:
    assert "not allowed: kill all needs the admin role" in ask(bot, "kill all", OPERATOR)
    assert not bot.rdb.exists(bot.key("kill:all"))
    assert "Killed all tasks" in ask(bot, "kill all incident 42", ADMIN)
    assert bot.rdb.exists(bot.key("kill:all"))
    assert "second, different admin" in ask(bot, "revive all", ADMIN)
    assert bot.rdb.exists(bot.key("kill:all"))
    assert "already asked" in ask(bot, "revive all", ADMIN)
    assert "Revived all tasks" in ask(bot, "revive all", ADMIN2)
    assert not bot.rdb.exists(bot.key("kill:all"))


def test_status_and_list(bot: Bot) -> None:
    data, _card = bot.escalate()
    tid = data["task_id"]
    ask(bot, f"pause {tid} hold on")
    status = bot.reply_to(bot.command(f"status {tid}", STRANGER))  # anyone may look
    text = json.dumps(status["blocks"])
    assert "paused" in status["text"] and data["escalation_id"] in text and "hold on" in text
    listing = bot.reply_to(bot.command("list", STRANGER))
    blocks = json.dumps(listing["blocks"])
    assert data["escalation_id"] in blocks and f"pause:{tid}" in blocks
    assert "Unknown task" in ask(bot, f"status {task()}")


@pytest.mark.parametrize("text", ["", "help", "HELP"])
def test_help(bot: Bot, text: str) -> None:
    assert "/agent kill <task_id>" in ask(bot, text, STRANGER)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("explode refund-1", "unknown command `explode`"),
        ("kill", "`kill` needs a task id"),
        ("redirect refund-1", "needs an instruction"),
        ("kill refund*1", "invalid task id"),
        ("pause all", "'all' is reserved"),
        ("kill " + "x" * 200, "200 characters long"),
        ("revive refund-1 please", "takes only a task id"),
        ("list everything", "takes no arguments"),
    ],
)
def test_malformed_commands_say_why_and_change_nothing(bot: Bot, text: str, needle: str) -> None:
    before = len(bot.audit())
    keys = set(bot.rdb.scan_iter(match=f"{bot.prefix}*"))
    answer = ask(bot, text)
    assert needle in answer and "/agent kill <task_id>" in answer
    assert len(bot.audit()) == before
    assert set(bot.rdb.scan_iter(match=f"{bot.prefix}*")) == keys


@pytest.mark.parametrize("text", ["kill {t}", "pause {t}", "redirect {t} go", "revive {t}"])
def test_a_stranger_is_refused_audited_and_changes_nothing(bot: Bot, text: str) -> None:
    tid = task()
    answer = ask(bot, text.format(t=tid), STRANGER)
    assert "not allowed" in answer and "operator role" in answer
    [row] = bot.wait_audit(task_id=tid, action="denied")
    assert row["actor"] == STRANGER
    assert not list(bot.rdb.scan_iter(match=f"{bot.prefix}*{tid}*"))


def test_a_user_group_member_has_the_groups_role(bot: Bot) -> None:
    tid = task()
    assert "Killed" in ask(bot, f"kill {tid}", GROUP_MEMBER)


def test_forged_and_stale_signatures_get_401_and_change_nothing(bot: Bot) -> None:
    tid = task()
    forged = bot.slack.slash_command(f"kill {tid}", user_id=ADMIN, signature="v0=" + "0" * 64)
    stale = bot.slack.slash_command(
        f"kill {tid}", user_id=ADMIN, timestamp=int(__import__("time").time()) - 600
    )
    other_secret = bot.slack.slash_command(f"kill {tid}", user_id=ADMIN, headers={})
    assert forged.status_code == 401 and stale.status_code == 401
    assert other_secret.status_code == 200  # the control: correctly signed is accepted
    bot.wait_audit(task_id=tid, action="kill")
    assert [r["action"] for r in bot.audit(task_id=tid)] == ["kill"]


def test_agent_wide_stops_from_slack(bot: Bot) -> None:
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    assert f"every task of {agent}" in ask(bot, f"kill agent:{agent} runaway")
    assert json.loads(bot.rdb.get(bot.key(f"kill:agent:{agent}")) or "{}")["by"] == OPERATOR
    assert "Revived" in ask(bot, f"revive agent:{agent}")
    assert "reserved for agent-wide stops" in ask(bot, f"redirect agent:{agent} stop now")
    assert "not allowed" in ask(bot, f"pause agent:{agent}", STRANGER)
    assert not bot.rdb.exists(bot.key(f"pause:agent:{agent}"))


def test_a_kill_of_a_task_never_seen_acts_and_says_so(bot: Bot) -> None:
    tid = task()
    answer = ask(bot, f"kill {tid}")
    assert "Killed" in answer and "No guard of" in answer and "holds when it starts" in answer
    assert bot.rdb.exists(bot.key(f"kill:{tid}"))
