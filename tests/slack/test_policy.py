"""The policy in a running `escbot serve`: routes to a ladder's channel, decides alone
without a card, and reloads its file (announcing the change, or the refusal)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slack.conftest import Bot, running_bot
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation_data
from tests.support.waiting import wait_until
from tests.test_policy_service import policy_yaml


@pytest.fixture(scope="module")
def ruled_bot(
    tmp_path_factory: pytest.TempPathFactory, sqlite_databases: DatabaseFactory, redis_url: str
) -> Iterator[Bot]:
    with running_bot(
        tmp_path_factory.mktemp("ruled"),
        sqlite_databases.fresh(),
        redis_url,
        policy=policy_yaml(),
    ) as bot:
        yield bot


def policy_path(bot: Bot) -> Path:
    return Path(bot.env["ESCBOT_POLICY"])


def announced(bot: Bot, needle: str) -> bool:
    return any(needle in json.dumps(m.blocks) for m in bot.fake.messages("C0TRIAGE"))


def test_a_routed_escalation_is_carded_in_its_ladders_channel(ruled_bot: Bot) -> None:
    _data, card = ruled_bot.escalate()  # a 740 EUR refund: a person decides
    assert card.channel == "C0PAYTRI"
    assert "route `refunds`" in json.dumps(card.blocks)


def test_a_small_refund_is_approved_by_the_policy_with_no_card(ruled_bot: Bot) -> None:
    data = escalation_data(action={"name": "issue_refund", "args": {"amount": 20}}, confidence=0.9)
    ruled_bot.rdb.xadd(ruled_bot.key("escalations"), {"payload": json.dumps(data)})
    key = ruled_bot.key(f"decision:{data['escalation_id']}")
    value = json.loads(wait_until(lambda: ruled_bot.rdb.get(key), what="the policy's decision"))
    assert value["by"] == "policy" and value["rule"] == "issue_refund"
    [row] = ruled_bot.wait_audit(escalation_id=data["escalation_id"])
    assert row["actor"] == "policy"
    assert not any(data["escalation_id"] in json.dumps(m.blocks) for m in ruled_bot.fake.messages())


def test_the_file_is_reloaded_when_it_changes_and_on_sighup(ruled_bot: Bot) -> None:
    path = policy_path(ruled_bot)
    original = path.read_text()
    try:
        path.write_text(original + "\n# refused: a route to nowhere\nroutes: [{ladder: nope}]\n")
        wait_until(lambda: announced(ruled_bot, "policy file was refused"), what="the refusal")
        assert announced(ruled_bot, "unknown ladder")
        path.write_text(original.replace("ack_timeout: 2m", "ack_timeout: 3m"))
        wait_until(lambda: announced(ruled_bot, "The policy changed"), what="the change")
        [changed] = ruled_bot.wait_audit(action="policy_changed")
        assert changed["detail"]["old"] != changed["detail"]["new"]
        # SIGHUP reads the file again even when its timestamp did not move.
        assert ruled_bot.process.process is not None
        os.kill(ruled_bot.process.process.pid, signal.SIGHUP)
        _data, card = ruled_bot.escalate()
        assert card.channel == "C0PAYTRI"
    finally:
        path.write_text(original)
