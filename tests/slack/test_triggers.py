"""Triggers in a running `escbot serve`: a signal pauses a task and its card names the
trigger; a bot killed with SIGKILL between signals and started again fires once."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
import yaml

from bot.db.models import TriggerFiring
from tests.conftest import POLICY_YAML
from tests.slack.conftest import Bot, running_bot
from tests.support.databases import DatabaseFactory
from tests.support.waiting import wait_until

POLICY = POLICY_YAML + yaml.safe_dump(
    {
        "triggers": [
            {
                "name": "cost-spike",
                "signal": "cost",
                "sum_over": "5m",
                "above": 20,
                "then": ["pause", "escalate"],
                "severity": "high",
            }
        ]
    }
)


def signal(bot: Bot, task_id: str, value: float) -> None:
    bot.rdb.zadd(bot.key("tasks"), {task_id: time.time()})
    bot.rdb.xadd(
        bot.key("agent-signals"),
        {"task_id": task_id, "agent": "billing", "signal": "cost", "value": str(value)},
    )


def firings(bot: Bot, task_id: str) -> int:
    with bot.store.reading() as session:
        count = sa.select(sa.func.count()).where(TriggerFiring.subject == task_id)
        return int(session.scalar(count) or 0)


def test_a_signal_pauses_and_opens_a_card_naming_the_trigger(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str
) -> None:
    with running_bot(tmp_path, sqlite_databases.fresh(), redis_url, policy=POLICY) as bot:
        task_id = f"t-{uuid.uuid4().hex[:6]}"
        signal(bot, task_id, 25)
        pause = wait_until(lambda: bot.rdb.get(bot.key(f"pause:{task_id}")), what="the pause")
        assert json.loads(pause)["by"] == "policy"
        card = wait_until(
            lambda: next(
                (m for m in bot.fake.messages("C0TRIAGE") if "Trigger" in json.dumps(m.blocks)),
                None,
            ),
            what="the trigger's card",
        )
        text = json.dumps(card.blocks)
        assert "cost-spike" in text and "cost summed over 5m is 25" in text


def test_killed_between_signals_and_restarted_it_fires_once(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str
) -> None:
    with running_bot(tmp_path, sqlite_databases.fresh(), redis_url, policy=POLICY) as bot:
        task_id = f"t-{uuid.uuid4().hex[:6]}"
        for value in (8, 8):
            signal(bot, task_id, value)
        window = bot.key(f"trigger:cost-spike:{task_id}:window")
        wait_until(
            lambda: (
                bot.rdb.exists(window)
                and bot.rdb.xpending(bot.key("agent-signals"), "escbot")["pending"] == 0
            ),
            what="the two signals counted",
        )
        bot.process.stop(hard=True)  # SIGKILL: no clean shutdown
        signal(bot, task_id, 8)  # 24: above 20, read by the next process
        bot.process.start()
        wait_until(lambda: bot.rdb.exists(bot.key(f"pause:{task_id}")), what="the pause")
        for value in (8, 8, 8):
            signal(bot, task_id, value)
        wait_until(
            lambda: bot.rdb.xpending(bot.key("agent-signals"), "escbot")["pending"] == 0,
            what="the later signals read",
        )
        assert firings(bot, task_id) == 1
        assert len(bot.audit(task_id=task_id, action="trigger")) == 1
