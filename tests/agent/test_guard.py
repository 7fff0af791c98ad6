"""The synchronous guard against the real Redis, driven through the bot's own service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from escbot_agent import PauseTimeout, TaskGuard, TaskKilled, is_killed
from escbot_agent.shared import process_name

from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.errors import InvalidId
from bot.keys import KeyNames
from tests.agent.conftest import AgentLoop, eventually, pending_count
from tests.conftest import ADMIN, OPERATOR
from tests.support.redis_server import PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
Guards = Callable[..., TaskGuard]


def test_the_sdk_loads_with_only_redis_and_pydantic() -> None:
    heavy = ("sqlalchemy", "slack_sdk", "slack_bolt", "apscheduler", "pagerduty", "alembic")
    code = (
        "import escbot_agent, sys; "
        f"loaded = sorted(m for m in sys.modules if m.startswith({heavy!r})); "
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_kill_through_the_service_stops_a_running_loop(
    make_guard: Guards, service: EscalationService, task_id: str, prefix: str
) -> None:
    guard = make_guard(task_id)
    assert guard.state == "running" and guard.control_reachable
    with AgentLoop(guard) as loop:
        service.kill(task_id, OPERATOR, "runaway loop")
        error = loop.ended_with()
    assert isinstance(error, TaskKilled)
    assert (error.reason, error.by, error.key) == (
        "runaway loop",
        OPERATOR,
        f"{prefix}kill:{task_id}",
    )
    assert not error.all_tasks and error.at.endswith("Z")
    assert guard.state == "killed"
    with pytest.raises(TaskKilled):  # the kill stays until revived
        guard.checkpoint()

    service.revive(task_id, OPERATOR)
    eventually(lambda: guard.state == "running", what="the revive to be seen")
    assert guard.checkpoint() == []


def test_kill_all_stops_every_task(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    first, second = make_guard(task_id), make_guard(f"{task_id}-b")
    with AgentLoop(first) as one, AgentLoop(second) as two:
        service.kill_all(ADMIN, "incident 42")
        errors = [one.ended_with(), two.ended_with()]
    for error in errors:
        assert isinstance(error, TaskKilled) and error.all_tasks
        assert error.reason == "incident 42" and error.by == ADMIN


def test_pause_blocks_the_loop_and_resume_releases_it(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    with AgentLoop(guard) as loop:
        service.pause(task_id, OPERATOR, "checking the ledger")
        eventually(lambda: guard.state == "paused", what="the pause to be seen")
        assert guard.paused is not None and guard.paused.reason == "checking the ledger"
        assert loop.holds()
        service.resume(task_id, OPERATOR)
        assert loop.advances()
    assert loop.error is None


def test_a_pause_longer_than_max_pause_raises(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    service.pause(task_id, OPERATOR, "hold on")
    eventually(lambda: guard.paused is not None)
    with pytest.raises(PauseTimeout) as caught:
        guard.checkpoint(max_pause=0.2)
    assert caught.value.control is not None and caught.value.control.by == OPERATOR
    assert not caught.value.unreachable


def test_inbox_entries_come_once_with_their_source_and_are_acked_once_taken(
    make_guard: Guards, service: EscalationService, task_id: str, rdb: redis.Redis, prefix: str
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    inbox = f"{prefix}inbox:{task_id}"
    service.redirect(task_id, OPERATOR, "refund 500 EUR, not 740")
    service.relay_message(task_id, OPERATOR, "the customer called back")

    messages = eventually(guard.checkpoint, what="the inbox entries")
    if len(messages) == 1:  # the two announcements may arrive between two checkpoints
        messages += eventually(guard.checkpoint)
    assert [(m.kind, m.text, m.author, m.source) for m in messages] == [
        ("redirect", "refund 500 EUR, not 740", OPERATOR, "operator"),
        ("message", "the customer called back", OPERATOR, "operator"),
    ]
    assert all(m.escalation_id is None for m in messages)
    assert messages[0].is_redirect
    assert pending_count(rdb, inbox, "billing-agent") == 2  # handed out, not yet taken

    assert guard.checkpoint() == []  # back at a checkpoint: they were taken
    assert pending_count(rdb, inbox, "billing-agent") == 0
    assert guard.checkpoint() == []


def test_inbox_entries_are_delivered_once_across_a_reconnect(
    make_guard: Guards,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    guard = make_guard(task_id, consumer="worker-1")
    inbox = f"{prefix}inbox:{task_id}"
    service.relay_message(task_id, OPERATOR, "one")
    first = eventually(guard.checkpoint)
    assert [m.text for m in first] == ["one"]  # handed out, not acknowledged yet

    # A read whose reply was lost: the entry is in this consumer's pending list, unseen.
    service.relay_message(task_id, OPERATOR, "two")
    rdb.xreadgroup("worker-1", "worker-1", {inbox: ">"})
    # The connection drops: the server closes every connection of this process's guards.
    name = process_name()
    ids = [c["id"] for c in rdb.client_list() if c.get("name") == name]
    assert ids
    for client_id in ids:
        rdb.client_kill_filter(_id=client_id)
    service.relay_message(task_id, OPERATOR, "three")

    seen: list[str] = []

    def collect() -> bool:
        seen.extend(m.text for m in guard.checkpoint())
        return len(seen) >= 2

    eventually(collect, what="the entries after the reconnect")
    for _ in range(20):
        seen.extend(m.text for m in guard.checkpoint())
    assert sorted(seen) == ["three", "two"]  # "one" is not handed out again
    assert pending_count(rdb, inbox, "worker-1") == 0


def test_a_restarted_agent_gets_again_only_what_it_had_not_taken(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    service.relay_message(task_id, OPERATOR, "before the crash")
    crashed = make_guard(task_id, consumer="worker")
    handed = eventually(crashed.checkpoint)
    crashed.close(took_last=False)  # what `with` does when the agent raised

    restarted = make_guard(task_id, consumer="worker")
    again = eventually(restarted.checkpoint)
    assert [m.id for m in again] == [m.id for m in handed]
    restarted.close()  # a clean exit: the agent took them

    assert make_guard(task_id, consumer="worker").checkpoint() == []
    other = make_guard(task_id, consumer="auditor")  # a consumer of its own sees everything
    assert [m.text for m in eventually(other.checkpoint)] == ["before the crash"]


def test_a_kill_key_written_without_its_announcement_is_seen_at_the_reread(
    make_guard: Guards, task_id: str, rdb: redis.Redis, prefix: str
) -> None:
    """The lost `control` message: an operator following the original notes with redis-cli
    (`SET kill:{id} 1`, no PUBLISH, no JSON) still stops the agent."""
    guard = make_guard(task_id)
    with AgentLoop(guard) as loop:
        rdb.set(f"{prefix}kill:{task_id}", "1")
        error = loop.ended_with()
    assert isinstance(error, TaskKilled)
    assert error.by == "unknown" and f"kill:{task_id} is set ('1')" in error.reason


def test_with_push_disabled_the_guard_polls(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id, push=False)
    with AgentLoop(guard) as loop:
        service.kill(task_id, OPERATOR, "stop")
        assert isinstance(loop.ended_with(), TaskKilled)


def test_a_checkpoint_does_not_touch_redis_when_nothing_changed(
    private_redis: PrivateRedis, make_guard: Guards
) -> None:
    guard = make_guard("quiet-1", url=private_redis.url, prefix="")
    assert guard.checkpoint() == []  # the first one reads the inbox
    admin = redis.Redis.from_url(private_redis.url, decode_responses=True)
    admin.config_resetstat()
    for _ in range(10_000):
        assert guard.checkpoint() == []
    stats = admin.info("commandstats")
    admin.close()
    calls = sum(int(row["calls"]) for name, row in stats.items() if name != "cmdstat_info")
    assert calls < 50  # the background's periodic re-reads only, never one per checkpoint


def test_the_original_notes_check_obeys_the_bot_unchanged(
    private_redis: PrivateRedis,
    make_service: Callable[..., EscalationService],
    make_guard: Guards,
) -> None:
    """No prefix, as in the notes: run on a private server so no shared key is touched."""
    client = connect(private_redis.url)
    service = make_service(ControlPlane(client, KeyNames("")))
    r = redis.Redis.from_url(private_redis.url)

    def notes_is_killed(task_id: str) -> bool:  # verbatim from the original notes
        return bool(r.exists(f"kill:{task_id}") or r.exists("kill:all"))

    guard = make_guard("refund-4711", url=private_redis.url, prefix="")
    assert not notes_is_killed("refund-4711") and not is_killed(r, "refund-4711")
    service.kill("refund-4711", OPERATOR, "runaway")
    assert notes_is_killed("refund-4711") and is_killed(r, "refund-4711")
    assert not notes_is_killed("refund-9")
    value = json.loads(r.get("kill:refund-4711") or "{}")
    assert value["reason"] == "runaway" and value["by"] == OPERATOR
    eventually(lambda: guard.state == "killed")

    service.kill_all(ADMIN, "incident")
    assert notes_is_killed("refund-9") and is_killed(r, "refund-9")
    r.close()
    client.close()


def test_bad_ids_and_settings_are_refused_before_any_key_is_touched(rdb: redis.Redis) -> None:
    for bad in ("bad id", "all", "ALL", "", "x" * 129):
        with pytest.raises(InvalidId):
            TaskGuard(bad, redis=rdb)
        with pytest.raises(InvalidId):
            is_killed(rdb, bad)
    with pytest.raises(ValueError, match="on_unreachable"):
        TaskGuard("t-1", redis=rdb, on_unreachable="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reread_interval"):
        TaskGuard("t-1", redis=rdb, reread_interval=0)
    with pytest.raises(RuntimeError, match="not running"):
        TaskGuard("t-1", redis=rdb).checkpoint()


def test_the_old_name_still_works_and_says_it_is_deprecated() -> None:
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    import bot.agent\nexcept DeprecationWarning as warning:\n    print(warning)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        "import bot.agent, escbot_agent, escbot_agent.guard\n"
        "from bot.agent.guard import TaskGuard\n"
        "assert bot.agent.TaskGuard is escbot_agent.TaskGuard is TaskGuard\n"
        "assert bot.agent.payloads is escbot_agent.payloads\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bot.agent is deprecated" in done.stdout
