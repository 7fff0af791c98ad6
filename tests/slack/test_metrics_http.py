"""`/metrics` and JSON logs of a real `escbot serve`: over the HTTP server (waitress) and
on `--metrics-port` in Socket Mode, parsed with prometheus_client's own parser; the log
lines of the same process parse as JSON and carry the ids."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from blocks.actions import Action
from bot.metrics import DURATION_BUCKETS
from tests.conftest import OPERATOR, POLICY_YAML
from tests.slack.conftest import Bot, bot_env, running_bot
from tests.support.bot_process import BotProcess
from tests.support.databases import DatabaseFactory
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode
from tests.support.keyspace import delete_prefixed, new_prefix
from tests.support.redis_server import free_port
from tests.support.waiting import wait_until

PROXIES_UNSET = {name: "" for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture(scope="module")
def json_bot(
    tmp_path_factory: pytest.TempPathFactory, sqlite_databases: DatabaseFactory, redis_url: str
) -> Iterator[Bot]:
    with running_bot(
        tmp_path_factory.mktemp("metrics-bot"),
        sqlite_databases.fresh(),
        redis_url,
        extra_env={"ESCBOT_LOG_FORMAT": "json"},
    ) as bot:
        yield bot


def test_metrics_over_the_http_server_parse_and_count_what_happened(json_bot: Bot) -> None:
    bot = json_bot
    url = f"http://127.0.0.1:{bot.process.port}/metrics"
    data, card = bot.escalate(task_type="refund", severity="high", kind="approval")
    assert bot.click(Action.APPROVE, card, OPERATOR).status_code == 200
    bot.wait_audit(action="approve", escalation_id=data["escalation_id"])

    def counted() -> dict[Any, float] | None:
        samples = scrape(url)
        decided = value(samples, "escbot_decisions_total", decision="approved", by="human")
        return samples if decided == 1 else None

    samples = wait_until(counted, what="the approval counted")
    opened = {"task_type": "refund", "severity": "high", "kind": "approval"}
    assert value(samples, "escbot_escalations_total", **opened) == 1
    assert value(samples, "escbot_open_escalations") == 0
    assert value(samples, "escbot_live_tasks") == 0
    assert value(samples, "escbot_open_escalations_past_sla", severity="critical") == 0
    labels = {"task_type": "refund", "severity": "high"}
    assert value(samples, "escbot_time_to_decision_seconds_count", **labels) == 1
    buckets = [
        value(samples, "escbot_time_to_decision_seconds_bucket", **labels, le=str(le))
        for le in DURATION_BUCKETS
    ]
    assert buckets[-1] == 1 and buckets == sorted(buckets)  # cumulative
    assert requests.post(url, timeout=5).status_code == 405  # a read only


def test_json_log_lines_parse_and_carry_the_ids(json_bot: Bot) -> None:
    bot = json_bot
    task_id = f"refund-{uuid.uuid4().hex[:8]}"
    data, card = bot.escalate(task_id=task_id)
    assert bot.click(Action.ACKNOWLEDGE, card, OPERATOR).status_code == 200
    bot.wait_audit(action="acknowledge", escalation_id=data["escalation_id"])

    def lines() -> list[dict[str, Any]] | None:
        parsed = [json.loads(line) for line in bot.process.log().splitlines() if line.strip()]
        about = [p for p in parsed if p.get("escalation_id") == data["escalation_id"]]
        return parsed if any(p.get("actor") == OPERATOR for p in about) else None

    parsed = wait_until(lines, what="the acknowledgement's log line")  # every line is JSON
    for line in parsed:
        assert {"time", "level", "logger", "message"} <= set(line), line
    [acked] = [
        p
        for p in parsed
        if p.get("escalation_id") == data["escalation_id"] and p.get("actor") == OPERATOR
    ]
    assert acked["task_id"] == task_id and acked["level"] == "INFO"
    assert acked["logger"] == "escbot.events" and "acknowledged" in acked["message"]
    opened = [p for p in parsed if p.get("escalation_id") == data["escalation_id"]]
    assert any(p.get("actor") == f"agent:{data['agent']}" for p in opened)


def test_socket_mode_serves_metrics_on_its_own_port(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str
) -> None:
    prefix = new_prefix()
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    socket_mode = FakeSocketMode().start()
    fake = FakeSlack(socket_mode_url=socket_mode.url).start()
    env = (
        bot_env(fake.api_url, redis_url, prefix, sqlite_databases.fresh(), tmp_path / "policy.yaml")
        | {"SLACK_APP_TOKEN": "xapp-1-test"}
        | PROXIES_UNSET
    )
    port = free_port()
    process = BotProcess(env, tmp_path, http=False)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        process.start(args=("--metrics-port", str(port)), ready=lambda: socket_mode.connected)
        samples = wait_until(lambda: scrape(f"http://127.0.0.1:{port}/metrics"), what="metrics")
        assert value(samples, "escbot_open_escalations") == 0
        assert value(samples, "escbot_cards_waiting") == 0
    finally:
        process.stop()
        fake.stop()
        socket_mode.stop()
        delete_prefixed(client, prefix)
        client.close()
