"""Start-up fails with one clear line; a running bot answers /healthz."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import POLICY_YAML
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET, Bot
from tests.support.cli import Cli
from tests.support.databases import DatabaseFactory
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def cli(tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str) -> Cli:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    return Cli(
        tmp_path,
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "REDIS_URL": redis_url,
            "DATABASE_URL": sqlite_databases.fresh(),
        },
    )


def one_line(ran, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert ran.code == 2, (ran.code, ran.err)
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in ran.err, ran.err


def test_missing_or_bad_settings_stop_start_up_in_one_line(cli: Cli, tmp_path: Path) -> None:
    one_line(cli("serve", "--http", SLACK_BOT_TOKEN=""), "SLACK_BOT_TOKEN is required")
    one_line(cli("serve", "--http", SLACK_BOT_TOKEN="xoxp-user"), "SLACK_BOT_TOKEN: must be")
    one_line(cli("serve", "--http", SLACK_SIGNING_SECRET=""), "SLACK_SIGNING_SECRET is required")
    one_line(cli("serve"), "SLACK_APP_TOKEN is required for Socket Mode")
    one_line(cli("serve", SLACK_APP_TOKEN="xoxb-wrong"), "SLACK_APP_TOKEN: must be")
    one_line(cli("serve", "--http", ESCBOT_POLICY="nowhere.yaml"), "nowhere.yaml does not exist")
    (tmp_path / "bad.yaml").write_text(POLICY_YAML.replace("channel: C0REVIEW", "channel: ''"))
    one_line(cli("serve", "--http", ESCBOT_POLICY="bad.yaml"), "needs a channel")


def test_every_missing_setting_is_named_in_the_one_line(cli: Cli) -> None:
    ran = cli(
        "serve", "--http", SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="", ESCBOT_POLICY="none.yaml"
    )
    one_line(ran, "SLACK_BOT_TOKEN is required but not set")
    for needle in ("SLACK_SIGNING_SECRET is required with --http", "none.yaml does not exist"):
        assert needle in ran.err, ran.err

    socket_mode = cli("serve", SLACK_BOT_TOKEN="", ESCBOT_POLICY="none.yaml")
    one_line(socket_mode, "SLACK_BOT_TOKEN is required but not set")
    for needle in ("SLACK_APP_TOKEN is required for Socket Mode", "none.yaml does not exist"):
        assert needle in socket_mode.err, socket_mode.err
    assert "SLACK_SIGNING_SECRET" not in socket_mode.err  # Socket Mode needs no secret


def test_malformed_and_missing_settings_are_named_together(cli: Cli) -> None:
    ran = cli(
        "serve",
        "--http",
        SLACK_BOT_TOKEN="xoxp-user",
        SLACK_SIGNING_SECRET="",
        REDIS_URL="http://x",
        ESCBOT_SWEEP_INTERVAL="soon",
    )
    one_line(ran, "SLACK_BOT_TOKEN: must be a bot token")
    for needle in (
        "REDIS_URL: must start with redis://",
        "ESCBOT_SWEEP_INTERVAL:",
        "SLACK_SIGNING_SECRET is required with --http",
    ):
        assert needle in ran.err, ran.err
    assert "SLACK_BOT_TOKEN is required" not in ran.err  # malformed, so named once, as such


def test_a_token_slack_refuses_stops_start_up(cli: Cli) -> None:
    with FakeSlack(valid_tokens={"xoxb-the-real-one"}) as fake:
        ran = cli("serve", "--http", "--port", "0", SLACK_API_URL=fake.api_url)
    one_line(ran, "SLACK_BOT_TOKEN: Slack refused the token (invalid_auth)")


def test_healthz_answers_once_redis_and_the_database_answer(bot: Bot) -> None:
    response = requests.get(bot.process.health_url, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": "ok", "redis": "ok"}
    assert (
        requests.get(bot.process.health_url.replace("healthz", "nope"), timeout=5).status_code
        == 404
    )


def test_a_port_in_use_is_one_line(cli: Cli, bot: Bot) -> None:
    ran = cli(
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        str(bot.process.port),
        SLACK_API_URL=bot.fake.api_url,
    )
    one_line(ran, f"--port {bot.process.port}: cannot listen on 127.0.0.1")
