"""The `escbot` CLI, run as a process against the real Redis and database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from bot.db.engine import make_engine
from tests.conftest import POLICY_YAML
from tests.support.cli import Cli
from tests.support.databases import DatabaseFactory


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """The CLI is the same over either database (the service tests cover both), and each
    call is a process start, so these run on SQLite; tamper detection runs on both."""
    return request.param


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, prefix: str, database_url: str) -> Cli:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    return Cli(
        tmp_path,
        {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": database_url},
    )


def one_line_error(ran, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert needle in ran.err, ran.err
    assert "Traceback" not in ran.err
    assert len(ran.err.strip().splitlines()) == 1, ran.err


def test_break_glass_kill_status_list_revive(cli: Cli, rdb: redis.Redis, prefix: str) -> None:
    ran = cli("kill", "refund-4711", "--reason", "runaway loop", "--by", "alice")
    assert ran.code == 0 and "Killed refund-4711" in ran.out
    assert json.loads(rdb.get(f"{prefix}kill:refund-4711") or "{}")["by"] == "cli:alice"

    again = cli("kill", "refund-4711", "--by", "bob")
    assert again.code == 1
    one_line_error(again, "already killed")

    status = cli("status", "refund-4711")
    assert status.code == 0 and "ACTIVE" in status.out and "cli:alice" in status.out
    data = json.loads(cli("status", "refund-4711", "--json").out)
    assert data["killed"]["reason"] == "runaway loop"
    assert data["recent"][0]["action"] == "kill"

    assert cli("pause", "refund-5", "--by", "alice").code == 0
    listing = cli("list")
    assert "kill:refund-4711" in listing.out and "pause:refund-5" in listing.out
    assert cli("resume", "refund-5", "--by", "alice").code == 0
    nothing = cli("resume", "refund-5", "--by", "alice")
    assert nothing.code == 1
    one_line_error(nothing, "not paused")

    assert cli("revive", "refund-4711", "--by", "alice").code == 0
    assert not rdb.exists(f"{prefix}kill:refund-4711")
    unknown = cli("status", "never-heard-of-it")
    assert unknown.code == 1
    one_line_error(unknown, "unknown task")


def test_kill_all_and_the_two_person_revive(cli: Cli, rdb: redis.Redis, prefix: str) -> None:
    assert cli("kill", "all", "--reason", "incident", "--by", "alice").code == 0
    assert rdb.exists(f"{prefix}kill:all")
    asked = cli("revive", "all", "--by", "alice")
    assert asked.code == 0 and "second, different admin" in asked.out
    assert rdb.exists(f"{prefix}kill:all")
    same = cli("revive", "all", "--by", "alice")
    assert same.code == 1
    confirmed = cli("revive", "all", "--by", "bob")
    assert confirmed.code == 0
    assert not rdb.exists(f"{prefix}kill:all")


@pytest.mark.parametrize("bad", ["*", "a b", "x" * 200])
def test_bad_task_ids_exit_non_zero_and_change_nothing(
    cli: Cli, rdb: redis.Redis, prefix: str, bad: str
) -> None:
    ran = cli("kill", bad, "--by", "alice")
    assert ran.code == 1
    one_line_error(ran, "invalid task id")
    assert list(rdb.scan_iter(match=f"{prefix}*")) == []
    assert cli("audit", "export").out == ""


def test_redis_down_exits_3_and_keeps_the_intent(cli: Cli, rdb: redis.Redis, prefix: str) -> None:
    ran = cli("kill", "refund-1", "--by", "alice", REDIS_URL="redis://127.0.0.1:1/0")
    assert ran.code == 3
    assert "recorded" in ran.err and "Traceback" not in ran.err
    assert "changes waiting for Redis: 1" in cli("list").out
    assert not rdb.exists(f"{prefix}kill:refund-1")
    reconciled = cli("reconcile")
    assert reconciled.code == 0 and "1 key(s) restored" in reconciled.out
    assert rdb.exists(f"{prefix}kill:refund-1")


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"])
def test_audit_verify_export_and_tamper(cli: Cli, database_url: str) -> None:
    for task in ("t1", "t2", "t3"):
        assert cli("kill", task, "--by", "alice").code == 0
    ok = cli("audit", "verify")
    assert ok.code == 0 and "3 rows verified" in ok.out
    lines = cli("audit", "export", "--format", "jsonl").out.splitlines()
    assert [json.loads(line)["task_id"] for line in lines] == ["t1", "t2", "t3"]
    rows = list(csv.DictReader(io.StringIO(cli("audit", "export", "--format", "csv").out)))
    assert [row["actor"] for row in rows] == ["cli:alice"] * 3
    assert cli("audit", "export", "--since", "2999-01-01T00:00:00Z").out == ""
    assert cli("audit", "export", "--since", "yesterday").code == 2

    engine = make_engine(database_url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            connection.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        connection.execute(sa.text("UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 2"))
    engine.dispose()
    broken = cli("audit", "verify")
    assert broken.code == 1
    assert "row 2" in broken.err


def test_configuration_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    one_line_error(cli("list", ESCBOT_SWEEP_INTERVAL="soon"), "ESCBOT_SWEEP_INTERVAL")
    # `decide` needs the policy (the break-glass verbs warn and act: test_cli_breakglass).
    decide = ("decide", "01JDAAAAAAAAAAAAAAAAAAAAAA", "approve", "--by", "alice")
    missing = cli(*decide, ESCBOT_POLICY="missing.yaml")
    assert missing.code == 2
    one_line_error(missing, f"{tmp_path / 'missing.yaml'} does not exist")
    (tmp_path / "broken.yaml").write_text(POLICY_YAML.replace("5m", "five"))
    broken = cli(*decide, ESCBOT_POLICY="broken.yaml")
    assert broken.code == 2
    one_line_error(broken, "not a duration")
    ran = cli("list", DATABASE_URL="postgresql://127.0.0.1:1/none")
    assert ran.code == 2
    one_line_error(ran, "DATABASE_URL")


def test_list_needs_a_migrated_database(
    tmp_path: Path, redis_url: str, databases: DatabaseFactory
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    cli = Cli(tmp_path, {"REDIS_URL": redis_url, "DATABASE_URL": databases.fresh(migrated=False)})
    ran = cli("list")
    assert ran.code == 2
    one_line_error(ran, "run `escbot migrate`")
    migrated = cli("migrate")
    assert migrated.code == 0 and "migrated from empty" in migrated.out
    assert "already at revision" in cli("migrate").out
    assert cli("list").code == 0


def test_schema_prints_the_contracts(cli: Cli) -> None:
    schemas = json.loads(cli("schema").out)
    assert schemas["escalation"]["required"] == ["task_id", "reason"]
    assert json.loads(cli("schema", "decision-value").out)["title"] == "DecisionValue"
    one_line_error(cli("schema", "nope"), "unknown contract")


def test_decide_and_redirect_from_the_shell(
    cli: Cli, rdb: redis.Redis, prefix: str, database_url: str, redis_url: str
) -> None:
    from bot.control import ControlPlane, connect
    from bot.core import EscalationService
    from bot.db.store import Store
    from bot.keys import KeyNames
    from bot.policy import parse_policy
    from tests.support.factories import escalation

    store = Store.from_url(database_url)
    service = EscalationService(
        store,
        ControlPlane(connect(redis_url), KeyNames(prefix)),
        parse_policy(POLICY_YAML.encode()),
    )
    view, _ = service.open_escalation(escalation())
    for typed, error in (("{bad", "not valid JSON"), ("[1]", "must be a JSON object")):
        one_line_error(cli("decide", view.id, "approve", "--args", typed, "--by", "alice"), error)
    refused = cli("decide", view.id, "redirect", "--by", "alice")
    assert refused.code == 1 and "instruction is required" in refused.err
    ran = cli("decide", view.id, "redirect", "--instruction", "refund 500", "--by", "alice")
    assert ran.code == 0 and "Redirected" in ran.out
    decision = json.loads(rdb.get(f"{prefix}decision:{view.id}") or "{}")
    assert decision["by"] == "cli:alice" and decision["instruction"] == "refund 500"
    again = cli("decide", view.id, "approve", "--by", "bob")
    assert again.code == 1 and "already redirected by cli:alice" in again.err
    assert cli("decide", "no-such-one", "approve", "--by", "bob").code == 1
    assert cli("redirect", view.task_id, "stop after this", "--by", "alice").code == 0
    entries = [fields for _id, fields in rdb.xrange(f"{prefix}inbox:{view.task_id}")]
    assert [e["text"] for e in entries] == ["refund 500", "stop after this"]
    store.dispose()


def test_agent_wide_stops_from_the_cli(cli: Cli, rdb: redis.Redis, prefix: str) -> None:
    ran = cli("kill", "agent:billing-agent", "--reason", "runaway", "--by", "alice")
    assert ran.code == 0 and "every task of billing-agent" in ran.out
    assert json.loads(rdb.get(f"{prefix}kill:agent:billing-agent") or "{}")["by"] == "cli:alice"
    assert "kill:agent:billing-agent" in cli("list").out
    assert cli("revive", "agent:billing-agent", "--by", "alice").code == 0
    refused = cli("redirect", "agent:billing-agent", "stop", "--by", "alice")
    assert refused.code == 1 and "reserved for agent-wide stops" in refused.err
