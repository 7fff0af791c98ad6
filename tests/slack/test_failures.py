"""Slack failing: 429 waits and retries; a card that cannot be posted waits and is posted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OPERATOR
from tests.slack.conftest import Bot, make_bot, wait_until
from tests.support.cli import Cli
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation_data


@pytest.fixture
def own_bot(tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str) -> Iterator[Bot]:
    """A bot of this test's own: these tests break its Slack."""
    yield from make_bot(tmp_path, sqlite_databases.fresh(), redis_url)


def test_a_429_is_retried_after_retry_after(own_bot: Bot) -> None:
    bot = own_bot
    bot.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    data, card = bot.escalate()
    attempts = bot.fake.calls("chat.postMessage")
    assert [call.failed for call in attempts[:2]] == [True, False]
    assert attempts[1].at - attempts[0].at >= 0.9  # it waited for Retry-After
    assert data["escalation_id"] in json.dumps(card.blocks)


def test_a_card_that_cannot_be_posted_is_kept_and_posted_later(own_bot: Bot) -> None:
    bot = own_bot
    bot.fake.set_down(True)
    data = escalation_data()
    bot.rdb.xadd(bot.key("escalations"), {"payload": json.dumps(data)})
    bot.fake.wait_for("chat.postMessage", count=2)  # tried, failed (and retried once)
    assert bot.fake.messages("C0TRIAGE") == []
    response = bot.command(f"kill {data['task_id']} while slack is out", OPERATOR)
    assert response.status_code == 200  # the bot answers Slack even while its API is down
    wait_until(lambda: bot.rdb.exists(bot.key(f"kill:{data['task_id']}")), what="the kill")
    bot.fake.set_down(False)
    card = bot.card(data["escalation_id"], timeout=15)
    assert card.channel == "C0TRIAGE"
    # The kill made while Slack was out is announced once it is back.
    wait_until(
        lambda: [
            m
            for m in bot.fake.messages("C0TRIAGE")
            if "killed" in m.text and data["task_id"] in m.text
        ],
        timeout=15,
        what="the late announcement",
    )


def test_actions_of_the_break_glass_cli_are_announced_by_the_running_bot(
    own_bot: Bot, tmp_path: Path
) -> None:
    bot = own_bot
    tid = f"refund-{uuid.uuid4().hex[:8]}"
    cli = Cli(tmp_path, {k: v for k, v in bot.env.items() if not k.startswith("SLACK_")})
    assert cli("kill", tid, "--reason", "from the shell", "--by", "alice").code == 0
    [message] = wait_until(
        lambda: [m for m in bot.fake.messages("C0TRIAGE") if tid in m.text],
        what="the CLI kill's announcement",
    )
    assert "cli:alice" in json.dumps(message.blocks) and "from the shell" in json.dumps(
        message.blocks
    )
