"""The break-glass CLI when the rest is broken: the policy, the working directory, Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import make_url

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from bot.errors import ConfigError, NotAllowed
from bot.policy import UnavailablePolicy
from tests.conftest import OPERATOR, POLICY_YAML
from tests.support.cli import Cli, Ran
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation
from tests.support.writers import KillWriter, seed_audit

BROKEN = POLICY_YAML.replace("ack_timeout: 15m", "ack_timeout: 0s")
WHY = "tiers[1].ack_timeout: '0s': a duration must be positive (use e.g. 90s, 5m or 2h)"


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Each call is a process start: these run on SQLite unless they are about a database."""
    return request.param


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, prefix: str, database_url: str) -> Cli:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    return Cli(
        tmp_path,
        {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": database_url},
    )


def one_line(ran: Ran, needle: str) -> None:
    assert needle in ran.err, ran.err
    assert "Traceback" not in ran.err
    assert len(ran.err.strip().splitlines()) == 1, ran.err


def rows(cli: Cli) -> list[dict]:
    return [json.loads(line) for line in cli("audit", "export").out.splitlines()]


def test_a_broken_policy_does_not_stop_the_break_glass_commands(
    cli: Cli, rdb: redis.Redis, prefix: str
) -> None:
    broken = {"ESCBOT_POLICY": "broken.yaml"}
    steps = [
        ("kill", "refund-1", "--reason", "runaway", "--by", "alice"),
        ("pause", "refund-2", "--by", "alice"),
        ("status", "refund-1"),
        ("list",),
        ("resume", "refund-2", "--by", "alice"),
        ("revive", "refund-1", "--by", "alice"),
        ("kill", "all", "--reason", "incident", "--by", "alice"),
        ("revive", "all", "--by", "alice"),
        ("revive", "all", "--by", "bob"),
        ("reconcile",),
    ]
    for step in steps:
        ran = cli(*step, **broken)
        assert ran.code == 0, (step, ran.err)
        one_line(ran, f"warning: acting without the policy (broken.yaml: {WHY})")
        if step[0] == "kill" and step[1] == "refund-1":
            assert json.loads(rdb.get(f"{prefix}kill:refund-1") or "{}")["by"] == "cli:alice"
    assert not rdb.exists(f"{prefix}kill:all") and not rdb.exists(f"{prefix}pause:refund-2")

    written = rows(cli)
    assert [row["action"] for row in written] == [
        "kill",
        "pause",
        "resume",
        "revive",
        "kill_all",
        "revive",
        "revive",
    ]
    for row in written:
        assert row["policy_version"] == "unavailable"
        assert row["detail"]["policy_unavailable"] == f"broken.yaml: {WHY}"
    assert written[5]["detail"]["step"] == "requested"  # the verb's own detail is kept
    verified = cli("audit", "verify", **broken)
    assert verified.code == 0 and "7 rows verified" in verified.out and verified.err == ""

    # Deciding and redirecting act on the policy's terms: they still need it.
    for step in (
        ("decide", "01JDAAAAAAAAAAAAAAAAAAAAAA", "approve", "--by", "alice"),
        ("redirect", "refund-1", "only 500 EUR", "--by", "alice"),
    ):
        refused = cli(*step, **broken)
        assert refused.code == 2
        one_line(refused, WHY)
    assert len(rows(cli)) == 7
    assert "warning" not in cli("list").err  # a good policy again: no warning


def test_a_missing_policy_file_is_named_by_its_absolute_path(cli: Cli, tmp_path: Path) -> None:
    ran = cli("kill", "refund-9", "--by", "alice", ESCBOT_POLICY="nope.yaml")
    assert ran.code == 0 and "Killed refund-9" in ran.out
    one_line(ran, f"policy file {tmp_path / 'nope.yaml'} does not exist")
    assert rows(cli)[0]["policy_version"] == "unavailable"


def test_the_stand_in_policy_lets_no_one_but_the_cli_act(
    store: Store, control: ControlPlane
) -> None:
    service = EscalationService(store, control, UnavailablePolicy.because("policy.yaml: bad"))
    with pytest.raises(NotAllowed):
        service.kill("refund-1", OPERATOR)  # a Slack user: no roles without the policy
    with pytest.raises(ConfigError, match=r"the policy is unavailable \(policy.yaml: bad\)"):
        service.open_escalation(escalation())  # routing needs the tiers
    assert service.kill("refund-1", "cli:alice").action == "kill"
    with store.reading() as session:
        denied, killed = list(audit.iter_records(session))
    assert denied.action == "denied" and denied.policy_version == "unavailable"
    assert (killed.detail or {})["policy_unavailable"] == "policy.yaml: bad"


def test_from_another_directory_no_database_is_created(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = Cli(elsewhere, {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix})
    expected = f"no database at {elsewhere / 'escbot.db'}: run `escbot migrate`"
    for step in (
        ("list",),
        ("status", "refund-1"),
        ("kill", "refund-1", "--by", "alice"),
        ("kill", "all", "--by", "alice"),
        ("reconcile",),
        ("decide", "01JDAAAAAAAAAAAAAAAAAAAAAA", "approve", "--by", "alice"),
        ("audit", "verify"),
        ("audit", "export"),
    ):
        ran = cli(*step)
        assert ran.code == 2, (step, ran.err)
        one_line(ran, expected)
    nested = cli("list", DATABASE_URL="sqlite:///data/bot.db")
    one_line(nested, f"no database at {elsewhere / 'data' / 'bot.db'}")
    assert list(elsewhere.iterdir()) == []

    made = cli("migrate")
    assert made.code == 0
    assert f"database {elsewhere / 'escbot.db'} migrated from empty" in made.out
    assert cli("list").code == 0


def test_redis_down_kill_says_recorded_and_reconcile_is_one_line(
    cli: Cli, rdb: redis.Redis, prefix: str
) -> None:
    down = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    ran = cli("kill", "refund-1", "--by", "alice", **down)
    assert ran.code == 3 and ran.out == ""
    assert "Audit row 1 (kill) is recorded, but Redis could not be written" in ran.err
    assert f"{prefix}kill:refund-1 will be set when Redis is back" in ran.err
    assert "is set" not in ran.err and "Traceback" not in ran.err
    lifted = cli("revive", "refund-1", "--by", "alice", **down)
    assert lifted.code == 3 and f"{prefix}kill:refund-1 will be removed" in lifted.err

    reconciled = cli("reconcile", **down)
    assert reconciled.code == 3
    one_line(reconciled, "REDIS_URL: cannot write Redis (Error 111")
    assert "nothing was changed" in reconciled.err
    assert "changes waiting for Redis: 2" in cli("list").out
    assert cli("reconcile").code == 0
    assert not rdb.exists(f"{prefix}kill:refund-1")  # replayed from the truth: revived


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_postgres_urls_are_accepted(cli: Cli, database_url: str) -> None:
    spelled = make_url(database_url).set(drivername="postgres")
    url = spelled.render_as_string(hide_password=False)
    assert url.startswith("postgres://")
    assert cli("migrate", DATABASE_URL=url).code == 0
    assert cli("kill", "refund-1", "--by", "alice", DATABASE_URL=url).code == 0
    assert "kill:refund-1" in cli("list", DATABASE_URL=url).out
    assert cli("audit", "verify", DATABASE_URL=url).code == 0


def test_an_id_that_starts_with_a_dash_is_called_invalid(cli: Cli) -> None:
    for step, what in (
        (("kill", "-x"), "task id"),
        (("kill", "--by", "alice", "-x"), "task id"),
        (("status", "-x"), "task id"),
        (("decide", "-x", "approve", "--by", "alice"), "escalation id"),
    ):
        ran = cli(*step)
        assert ran.code == 1, (step, ran.err)
        one_line(ran, f"invalid {what} '-x': must start with a letter or digit")
    missing = cli("kill", "--by", "alice")
    assert missing.code == 2 and "required: TASK_ID" in missing.err
    assert rows(cli) == []


def test_verify_shows_its_progress_on_a_terminal_only(cli: Cli, database_url: str) -> None:
    store = Store.from_url(database_url)
    seed_audit(store, 20_000)
    store.dispose()
    shown = cli.on_terminal("audit", "verify")
    assert shown.code == 0 and "audit chain intact: 20000 rows verified" in shown.out
    assert "verifying the audit chain: " in shown.err and "of 20,000 rows" in shown.err
    assert shown.err.endswith("\r\x1b[K")  # the line is erased once done
    quiet = cli("audit", "verify")
    assert quiet.code == 0 and quiet.err == ""


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"])
def test_cli_verify_beside_kills_being_written(
    cli: Cli, database_url: str, databases: DatabaseFactory, control: ControlPlane, policy
) -> None:  # type: ignore[no-untyped-def]
    store = Store.from_url(database_url)
    seed_audit(store, 20_000)
    service = EscalationService(store, control, policy)
    try:
        with KillWriter(service) as writer:
            for _ in range(3):
                before = writer.written
                ran = cli("audit", "verify")
                assert ran.code == 0, ran.err
                assert "audit chain intact" in ran.out
                writer.await_one_more()
                assert writer.written > before
    finally:
        store.dispose()
    assert cli("audit", "verify").code == 0
