"""Tiers on a schedule and PagerDuty, end to end: `escbot serve` with 1-second tiers, paging
the fake PagerDuty over HTTPS."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blocks.actions import Action
from tests.conftest import OPERATOR
from tests.slack.conftest import (
    SIGNING_SECRET,
    Bot,
    bot_env,
    make_bot,
    running_bot,
    wait_until,
)
from tests.support.bot_process import BotProcess
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation_data
from tests.support.fake_pagerduty import FakePagerDuty
from tests.support.fake_slack import FakeSlack, Message
from tests.support.keyspace import delete_prefixed, new_prefix
from tests.support.redis_server import PrivateRedis

ROUTING_KEY = "R0UTINGKEY0123456789ABCDEFGHIJKL"
FAST_POLICY = """
roles:
  operator: [U0OPERATOR, S0OPS]
  admin: [U0ADMIN1, U0ADMIN2]
tiers:
  - name: triage
    channel: C0TRIAGE
    ack_timeout: {t}s
  - name: review
    channel: C0REVIEW
    ack_timeout: {t}s
  - name: incident
    channel: C0INCIDENT
    ack_timeout: {t}s
    page: true
on_final_timeout: reject
delivery:
  unposted_grace: {t}s  # a card Slack does not take holds its tier's clock this long
"""


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty(routing_keys={ROUTING_KEY}) as fake:
        yield fake


def paging_env(pagerduty: FakePagerDuty, directory: Path) -> dict[str, str]:
    """Paging settings for `escbot serve`, trusting the fake's test CA the standard way."""
    return {
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": pagerduty.url,
        "ESCBOT_SWEEP_INTERVAL": "0.2",
    } | pagerduty.trust_env(directory)


def bot_with_tiers(
    seconds: int,
    tmp_path: Path,
    databases: DatabaseFactory,
    redis_url: str,
    pagerduty: FakePagerDuty,
) -> Iterator[Bot]:
    yield from make_bot(
        tmp_path,
        databases.fresh(),
        redis_url,
        extra_env=paging_env(pagerduty, tmp_path),
        policy=FAST_POLICY.format(t=seconds),
    )


@pytest.fixture
def slow_bot(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str, pagerduty: FakePagerDuty
) -> Iterator[Bot]:
    """Tiers of a minute: an escalation stays at the paging tier while the test works."""
    yield from bot_with_tiers(60, tmp_path, sqlite_databases, redis_url, pagerduty)


@pytest.fixture
def fast_bot(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str, pagerduty: FakePagerDuty
) -> Iterator[Bot]:
    yield from bot_with_tiers(1, tmp_path, sqlite_databases, redis_url, pagerduty)


def card_text(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def test_triage_review_incident_with_a_page_then_expired(
    fast_bot: Bot, pagerduty: FakePagerDuty
) -> None:
    bot = fast_bot
    data, triage = bot.escalate()
    review = bot.card(data["escalation_id"], channel="C0REVIEW", timeout=10)
    incident = bot.card(data["escalation_id"], channel="C0INCIDENT", timeout=10)
    [trigger] = pagerduty.wait_for("trigger", timeout=10)
    body = trigger.body
    assert (
        body["dedup_key"] == data["escalation_id"] and body["payload"]["source"] == "billing-agent"
    )
    assert body["payload"]["severity"] == "error"  # high
    assert body["links"][0]["href"].startswith("https://fake-slack.test/archives/C0")
    assert "first card" in card_text(review) and "first card" in card_text(incident)
    expired = wait_until(
        lambda: "Expired" in card_text(m := bot.fake.message(incident.channel, incident.ts)) and m,
        timeout=10,
        what="the expired card",
    )
    assert "nobody decided in time" in card_text(expired)
    older = bot.fake.message(triage.channel, triage.ts)
    assert "It had been escalated to *incident*" in card_text(older)
    pagerduty.wait_for("resolve", timeout=10)
    assert pagerduty.incident(data["escalation_id"]).state == "resolved"
    decision = json.loads(bot.rdb.get(bot.key(f"decision:{data['escalation_id']}")) or "{}")
    assert decision["decision"] == "expired"
    actions = [r["action"] for r in bot.audit(escalation_id=data["escalation_id"])]
    assert actions.count("escalate") == 2 and actions.count("expire") == 1


def test_acknowledge_stops_the_climb(fast_bot: Bot, pagerduty: FakePagerDuty) -> None:
    bot = fast_bot
    data, card = bot.escalate()
    bot.click(Action.ACKNOWLEDGE, card, OPERATOR)
    bot.wait_audit(escalation_id=data["escalation_id"], action="acknowledge")
    bot.escalate()  # a later escalation climbs meanwhile: the sweep is running
    wait_until(lambda: bot.fake.messages("C0REVIEW"), timeout=10, what="the other climb")
    assert [r["action"] for r in bot.audit(escalation_id=data["escalation_id"])] == ["acknowledge"]
    assert not any(data["escalation_id"] in card_text(m) for m in bot.fake.messages("C0REVIEW"))


def test_approve_resolves_the_page(slow_bot: Bot, pagerduty: FakePagerDuty) -> None:
    bot = slow_bot
    data, card = bot.escalate(tier="incident")
    pagerduty.wait_for("trigger", timeout=10)
    bot.click(Action.APPROVE, card, OPERATOR)
    pagerduty.wait_for("resolve", timeout=10)
    assert pagerduty.incident(data["escalation_id"]).history == ["trigger", "resolve"]


def test_three_5xx_answers_and_the_page_still_lands_once(
    slow_bot: Bot, pagerduty: FakePagerDuty
) -> None:
    bot = slow_bot
    pagerduty.fail_next(times=3, status=500)
    data, card = bot.escalate(tier="incident")
    failing = wait_until(
        lambda: (
            "Paging PagerDuty is failing" in card_text(m := bot.fake.message(card.channel, card.ts))
            and m
        ),
        timeout=10,
        what="the card saying paging fails",
    )
    assert "500" in card_text(failing)
    pagerduty.wait_for("trigger", timeout=20)
    assert [e.status for e in pagerduty.events()][:4] == [500, 500, 500, 202]
    assert len(pagerduty.incidents(data["escalation_id"])) == 1
    assert pagerduty.incident(data["escalation_id"]).triggers == 1
    wait_until(
        lambda: "PagerDuty paged" in card_text(bot.fake.message(card.channel, card.ts)),
        timeout=10,
        what="the card saying the page landed",
    )


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_flushall_and_the_kills_are_back(
    tmp_path: Path,
    sqlite_databases: DatabaseFactory,
    own_redis: PrivateRedis,
    pagerduty: FakePagerDuty,
) -> None:
    with running_bot(
        tmp_path, sqlite_databases.fresh(), own_redis.url, extra_env=paging_env(pagerduty, tmp_path)
    ) as bot:
        tid = f"refund-{uuid.uuid4().hex[:6]}"
        bot.reply_to(bot.command(f"kill {tid} runaway", OPERATOR))
        bot.reply_to(bot.command(f"pause {tid}-b", OPERATOR))
        bot.reply_to(bot.command("kill all incident", "U0ADMIN1"))
        wait_until(lambda: bot.rdb.exists(bot.key("kill:all")), what="kill all")
        bot.rdb.flushall()
        for key in (f"kill:{tid}", f"pause:{tid}-b", "kill:all"):
            wait_until(lambda k=key: bot.rdb.exists(bot.key(k)), timeout=10, what=key)
        assert json.loads(bot.rdb.get(bot.key(f"kill:{tid}")) or "{}")["reason"] == "runaway"
        bot.wait_audit(action="redis_restored")


def test_killed_mid_climb_and_restarted_loses_no_step_and_doubles_none(
    tmp_path: Path,
    sqlite_databases: DatabaseFactory,
    redis_url: str,
    pagerduty: FakePagerDuty,
) -> None:
    with running_bot(
        tmp_path,
        sqlite_databases.fresh(),
        redis_url,
        extra_env=paging_env(pagerduty, tmp_path),
        policy=FAST_POLICY.format(t=1),
    ) as bot:
        ids = []
        for _ in range(12):
            data = escalation_data()
            bot.rdb.xadd(bot.key("escalations"), {"payload": json.dumps(data)})
            ids.append(data["escalation_id"])
        wait_until(lambda: bot.audit(action="escalate"), timeout=10, what="climbing to start")
        bot.process.stop(hard=True)  # SIGKILL, in the middle of it
        assert bot.process.process is None
        bot.process.start()
        wait_until(
            lambda: len(bot.audit(action="expire")) == len(ids), timeout=30, what="all expired"
        )
        for escalation_id in ids:
            steps = [r["action"] for r in bot.audit(escalation_id=escalation_id)]
            assert [s for s in steps if s != "page"] == ["escalate", "escalate", "expire"], steps
        wait_until(lambda: len(pagerduty.events("trigger")) >= len(ids), timeout=20, what="pages")
        triggers = {e.dedup_key for e in pagerduty.events("trigger") if e.accepted}
        assert triggers == set(ids)
        # A kill between sending and recording may send a trigger twice: the dedup key
        # keeps it to one incident.
        assert all(len(pagerduty.incidents(escalation_id)) == 1 for escalation_id in ids)


def test_two_serve_processes_on_one_postgresql_database_page_once_each(
    tmp_path: Path, pg_databases: DatabaseFactory, redis_url: str, pagerduty: FakePagerDuty
) -> None:
    (tmp_path / "policy.yaml").write_text(FAST_POLICY.format(t=1))
    prefix = new_prefix()
    database_url = pg_databases.fresh()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with FakeSlack() as fake:
        env = (
            bot_env(fake.api_url, redis_url, prefix, database_url, tmp_path / "policy.yaml")
            | {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
            | paging_env(pagerduty, tmp_path)
        )
        replicas = [BotProcess(env, tmp_path) for _ in range(2)]
        try:
            for replica in replicas:
                replica.start()
            ids = []
            for _ in range(20):
                data = escalation_data(tier="review")
                client.xadd(f"{prefix}escalations", {"payload": json.dumps(data)})
                ids.append(data["escalation_id"])
            wait_until(
                lambda: len({e.dedup_key for e in pagerduty.events("trigger")}) == len(ids),
                timeout=30,
                what="every escalation paged",
            )
            wait_until(
                lambda: len({e.dedup_key for e in pagerduty.events("resolve")}) == len(ids),
                timeout=30,
                what="every page resolved at expiry",
            )
            triggers = [e.dedup_key for e in pagerduty.events("trigger")]
            assert sorted(triggers) == sorted(ids)  # exactly once each, across both

            def incident_cards() -> list[str]:
                return [m.ts for m in fake.messages("C0INCIDENT") if m.thread_ts in (None, m.ts)]

            wait_until(lambda: len(incident_cards()) >= len(ids), timeout=30, what="every card")
            assert len(incident_cards()) == len(ids)  # posted once each, across both
        finally:
            threads = [threading.Thread(target=r.stop) for r in replicas]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            delete_prefixed(client, prefix)
            client.close()


def test_with_slack_out_the_escalation_still_climbs_and_pages(
    fast_bot: Bot, pagerduty: FakePagerDuty
) -> None:
    bot = fast_bot
    bot.fake.set_down(True)
    data = escalation_data()
    bot.rdb.xadd(bot.key("escalations"), {"payload": json.dumps(data)})
    [trigger] = pagerduty.wait_for("trigger", timeout=15)
    assert trigger.body["dedup_key"] == data["escalation_id"]
    assert "links" not in trigger.body or not trigger.body["links"]  # no card, no link yet
    assert bot.fake.messages() == []
    bot.fake.set_down(False)
    for channel in ("C0TRIAGE", "C0REVIEW", "C0INCIDENT"):  # every card arrives, late
        bot.card(data["escalation_id"], channel=channel, timeout=20)
