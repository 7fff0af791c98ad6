from datetime import timedelta

import pytest

from bot.authz import Authorizer
from bot.errors import ConfigError
from bot.policy import parse_policy
from bot.settings import load_settings, read_settings
from tests.conftest import ADMIN, GROUP_MEMBER, OPERATOR, POLICY_YAML, STRANGER, StaticDirectory


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "DATABASE_URL", "ESCBOT_SWEEP_INTERVAL", "SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.database_url == "sqlite:///escbot.db"
    assert settings.sweep_interval == 5
    assert settings.slack_api_base == "https://slack.com/api/"
    assert str(settings.pagerduty_events_url) == "https://events.pagerduty.com/"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("SLACK_BOT_TOKEN", "abc", "SLACK_BOT_TOKEN: must be a bot token"),
        ("SLACK_APP_TOKEN", "xoxb-1", "SLACK_APP_TOKEN: must be an app-level token"),
        ("ESCBOT_SWEEP_INTERVAL", "soon", "ESCBOT_SWEEP_INTERVAL:"),
        ("ESCBOT_SWEEP_INTERVAL", "0", "ESCBOT_SWEEP_INTERVAL:"),
        ("REDIS_URL", "http://x", "REDIS_URL: must start with redis://"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: must be a sqlite:// or postgresql://"),
        ("SLACK_API_URL", "not a url", "SLACK_API_URL:"),
        ("PAGERDUTY_EVENTS_URL", "http://events.pagerduty.com", "PAGERDUTY_EVENTS_URL: must be"),
        ("SSL_CERT_FILE", "/nowhere/ca.pem", "SSL_CERT_FILE: cannot read /nowhere/ca.pem"),
        ("REQUESTS_CA_BUNDLE", "/dev/null", "REQUESTS_CA_BUNDLE: /dev/null holds no PEM"),
        ("ESCBOT_LOG_FORMAT", "xml", "ESCBOT_LOG_FORMAT:"),
        ("ESCBOT_METRICS_LABEL_LIMIT", "0", "ESCBOT_METRICS_LABEL_LIMIT:"),
        ("ESCBOT_METRICS_LABEL_LIMIT", "many", "ESCBOT_METRICS_LABEL_LIMIT:"),
    ],
)
def test_a_malformed_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_malformed_setting_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "abc")
    monkeypatch.setenv("REDIS_URL", "http://x")
    monkeypatch.setenv("DATABASE_URL", "mysql://x/y")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "\n" not in message
    for needle in (
        "SLACK_BOT_TOKEN: must be a bot token",
        "REDIS_URL: must start with redis://",
        "DATABASE_URL: must be a sqlite:// or postgresql://",
    ):
        assert needle in message


def test_malformed_settings_fall_back_so_the_rest_can_be_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://x")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    settings, malformed = read_settings(_env_file=None, SLACK_BOT_TOKEN=None)
    assert list(malformed) == ["REDIS_URL"]
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.slack_signing_secret is not None
    assert settings.missing("slack_bot_token", "slack_signing_secret") == ["SLACK_BOT_TOKEN"]


def test_a_required_setting_is_named() -> None:
    settings = load_settings(_env_file=None, SLACK_BOT_TOKEN=None, SLACK_APP_TOKEN=None)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is required"):
        settings.require("slack_bot_token")
    with pytest.raises(ConfigError) as caught:
        settings.require("slack_bot_token", "slack_app_token")
    assert str(caught.value) == (
        "SLACK_BOT_TOKEN is required but not set; SLACK_APP_TOKEN is required but not set"
    )


def test_policy_loads_with_durations_and_a_content_version() -> None:
    policy = parse_policy(POLICY_YAML.encode())
    assert [tier.ack_timeout for tier in policy.tiers] == [
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(minutes=30),
    ]
    assert policy.tiers[2].page and not policy.tiers[0].page
    assert policy.version.startswith("sha256:")
    assert parse_policy(POLICY_YAML.encode()).version == policy.version
    assert parse_policy((POLICY_YAML + "\n# edited\n").encode()).version != policy.version
    assert parse_policy(POLICY_YAML.replace("5m", "90s").encode()).tiers[0].ack_timeout == (
        timedelta(seconds=90)
    )


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda y: y + "colour: red\n", "colour: unknown key"),
        (lambda y: y.replace("ack_timeout: 5m", "ack_timeout: 5 minutes"), "not a duration"),
        (
            lambda y: y.replace("ack_timeout: 5m", "ack_timeout: 0s"),
            "'0s': a duration must be positive",
        ),
        (lambda y: y.replace("ack_timeout: 5m", "ack_timeout: -5m"), "must be positive"),
        (lambda y: y.replace("    channel: C0REVIEW\n", ""), "tiers[1].channel: required"),
        (lambda y: y.replace("channel: C0REVIEW", "channel: ''"), "needs a channel"),
        (lambda y: y.replace("channel: C0REVIEW", "channel: '#review'"), "channel id"),
        (lambda y: y.replace("[U0ADMIN1, U0ADMIN2]", "[]"), "admin role is empty"),
        (lambda y: y.replace("[U0OPERATOR, S0OPS]", "[]"), "operator role is empty"),
        (lambda y: y.replace("U0OPERATOR", "alice"), "not a Slack user id"),
        (lambda y: y.replace("name: review", "name: triage"), "unique"),
        (lambda y: y.replace("on_final_timeout: reject", "on_final_timeout: explode"), "on_final"),
        (lambda y: "roles: [", "not valid YAML"),
        (lambda y: "- a\n- b\n", "must be a mapping"),
    ],
)
def test_policy_errors_are_clear(mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        parse_policy(mutate(POLICY_YAML).encode(), source="policy.yaml")
    message = str(caught.value)
    assert message.startswith("policy.yaml")
    assert needle in message
    assert "\n" not in message


def test_roles_match_user_ids_and_user_group_members() -> None:
    policy = parse_policy(POLICY_YAML.encode())
    authz = Authorizer(policy, StaticDirectory({"S0OPS": frozenset({GROUP_MEMBER})}))
    assert authz.check(OPERATOR, "operator").allowed
    assert authz.check(GROUP_MEMBER, "operator").allowed
    assert authz.check(ADMIN, "operator").allowed  # an admin may do what an operator may
    assert authz.check(ADMIN, "admin").allowed
    assert not authz.check(OPERATOR, "admin").allowed
    assert not authz.check(GROUP_MEMBER, "admin").allowed
    refused = authz.check(STRANGER, "operator")
    assert not refused.allowed and "operator role" in refused.why
    assert authz.check("cli:alice", "admin").allowed
