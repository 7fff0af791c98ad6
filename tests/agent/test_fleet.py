"""The fleet heartbeat of the sync guard (CONTRACTS §10): `task:{task_id}`, `tasks` and
`tasks:ended` against the real Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from escbot_agent import ApprovalOutcome, PauseTimeout, TaskGuard, TaskKilled

from bot.clock import parse_iso
from bot.core import EscalationService
from bot.intake import Intake
from bot.keys import KeyNames
from tests.agent.conftest import AgentLoop, eventually, opened
from tests.conftest import OPERATOR

ROOT = Path(__file__).resolve().parents[2]
Guards = Callable[..., TaskGuard]
FIELDS = {"agent", "task_type", "state", "step", "host", "pid", "started_at", "seen_at"}
SLOW = {"heartbeat_interval": 60.0, "heartbeat_ttl": 120.0}  # only state changes write
DAY = 24 * 3600


def task_hash(rdb: redis.Redis, prefix: str, task_id: str) -> dict[str, str]:
    return rdb.hgetall(KeyNames(prefix).task(task_id))  # type: ignore[return-value]  # decoded client


def state_is(rdb: redis.Redis, prefix: str, task_id: str, state: str) -> Callable[[], bool]:
    return lambda: task_hash(rdb, prefix, task_id).get("state") == state


@pytest.mark.parametrize("push", [True, False], ids=["push", "poll"])
def test_the_task_hash_has_every_field_and_the_sorted_set_the_task(
    make_guard: Guards, rdb: redis.Redis, prefix: str, task_id: str, push: bool
) -> None:
    before = time.time()
    guard = make_guard(
        task_id, agent="billing-agent", task_type="refund", push=push, heartbeat_interval=0.1
    )
    keys = KeyNames(prefix)
    row = task_hash(rdb, prefix, task_id)  # written before start() returns
    assert set(row) == FIELDS
    assert (row["agent"], row["task_type"], row["state"], row["step"]) == (
        "billing-agent",
        "refund",
        "running",
        "",  # no labelled checkpoint yet
    )
    assert (row["host"], row["pid"]) == (socket.gethostname(), str(os.getpid()))
    for field in ("started_at", "seen_at"):
        assert row[field].endswith("Z") and parse_iso(row[field]).timestamp() >= before - 1
    assert 0 < rdb.pttl(keys.task(task_id)) <= 30_000  # the contract's TTL by default
    score = rdb.zscore(keys.tasks, task_id)
    assert score is not None and before - 1 <= score <= time.time() + 1

    guard.checkpoint(step="look up the order")
    eventually(lambda: task_hash(rdb, prefix, task_id)["step"] == "look up the order")
    for _ in range(3):
        guard.checkpoint()  # unlabelled: the label stays until the next one
    guard.checkpoint(None, "refund")
    eventually(lambda: task_hash(rdb, prefix, task_id)["step"] == "refund")
    seen = row["seen_at"]
    eventually(lambda: task_hash(rdb, prefix, task_id)["seen_at"] != seen, what="a refresh")
    assert task_hash(rdb, prefix, task_id)["started_at"] == row["started_at"]
    assert guard.task_type == "refund" and guard.agent == "billing-agent"


@pytest.mark.parametrize("push", [True, False], ids=["push", "poll"])
def test_a_pause_and_a_kill_show_at_once_and_a_killed_task_stays_killed(
    make_guard: Guards,
    service: EscalationService,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
    push: bool,
) -> None:
    guard = make_guard(task_id, push=push, **SLOW)
    with AgentLoop(guard) as loop:
        service.pause(task_id, OPERATOR, "checking the ledger")
        eventually(state_is(rdb, prefix, task_id, "paused"), what="paused in the hash")
        assert loop.holds(0.2)
        service.resume(task_id, OPERATOR)
        eventually(state_is(rdb, prefix, task_id, "running"), what="running again")
        assert loop.advances()
        service.kill(task_id, OPERATOR, "runaway")
        assert isinstance(loop.ended_with(), TaskKilled)
    assert task_hash(rdb, prefix, task_id)["state"] == "killed"
    guard.close()
    keys = KeyNames(prefix)
    assert task_hash(rdb, prefix, task_id)["state"] == "killed"  # not `finished`
    assert rdb.zscore(keys.tasks_ended, task_id) is not None  # closed, not lost
    assert rdb.pttl(keys.task(task_id)) > 0


def test_a_revived_task_runs_again_and_a_pause_timeout_is_not_a_hold(
    make_guard: Guards, service: EscalationService, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    guard = make_guard(task_id, **SLOW)
    service.kill(task_id, OPERATOR, "runaway")
    eventually(lambda: guard.killed is not None)
    with pytest.raises(TaskKilled):
        guard.checkpoint()
    assert task_hash(rdb, prefix, task_id)["state"] == "killed"
    service.revive(task_id, OPERATOR)
    eventually(lambda: guard.killed is None)
    assert guard.checkpoint() == []
    assert task_hash(rdb, prefix, task_id)["state"] == "running"

    service.pause(task_id, OPERATOR, "a look")
    eventually(lambda: guard.paused is not None)
    with pytest.raises(PauseTimeout):
        guard.checkpoint(max_pause=0.1)
    assert task_hash(rdb, prefix, task_id)["state"] == "running"  # the agent decides now


def test_waiting_for_an_approval_shows(
    make_guard: Guards,
    intake: Intake,
    service: EscalationService,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
) -> None:
    guard = make_guard(task_id, task_type="refund", **SLOW)
    eid = f"esc-{uuid.uuid4().hex[:12]}"
    outcome: list[ApprovalOutcome] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            guard.request_approval(
                "issue_refund", reason="above the limit", timeout=10, escalation_id=eid
            )
        )
    )
    thread.start()
    assert opened(intake, service, eid).task_type == "refund"  # the guard's task_type
    eventually(state_is(rdb, prefix, task_id, "waiting"), what="waiting in the hash")
    service.decide(eid, OPERATOR, "approve")
    thread.join(10)
    assert outcome and outcome[0].approved
    assert task_hash(rdb, prefix, task_id)["state"] == "running"


def test_close_says_finished_and_records_the_task_as_ended(
    make_guard: Guards, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    keys = KeyNames(prefix)
    now = time.time()
    rdb.zadd(keys.tasks, {"old-task": now - DAY - 60, "recent-task": now - 3600})
    rdb.zadd(keys.tasks_ended, {"old-end": now - DAY - 60, "recent-end": now - 3600})
    guard = make_guard(task_id, heartbeat_ttl=0.6, heartbeat_interval=0.1)
    members = set(rdb.zrange(keys.tasks, 0, -1))
    assert members == {task_id, "recent-task"}  # older than a day: trimmed
    assert rdb.zscore(keys.tasks_ended, task_id) is None
    guard.close()
    assert task_hash(rdb, prefix, task_id)["state"] == "finished"
    assert set(rdb.zrange(keys.tasks_ended, 0, -1)) == {task_id, "recent-end"}
    eventually(lambda: not rdb.exists(keys.task(task_id)), what="the hash to expire")
    assert rdb.zscore(keys.tasks, task_id) is not None  # last seen stays for a day


def test_a_lost_task_expires_and_is_not_recorded_as_ended(
    redis_url: str, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    """The agent's process dies without closing its guard: the hash goes after its TTL."""
    code = (
        "import sys, time; from escbot_agent import TaskGuard; "
        f"g = TaskGuard({task_id!r}, url={redis_url!r}, prefix={prefix!r}, "
        "heartbeat_interval=0.1, heartbeat_ttl=0.6).start(); "
        "print('up', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "up"
        keys = KeyNames(prefix)
        assert task_hash(rdb, prefix, task_id)["state"] == "running"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        eventually(lambda: not rdb.exists(keys.task(task_id)), what="the hash to expire")
        assert rdb.zscore(keys.tasks, task_id) is not None
        assert rdb.zscore(keys.tasks_ended, task_id) is None
    finally:
        process.kill()
        process.wait(10)


def test_no_heartbeat_when_turned_off(
    make_guard: Guards, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    guard = make_guard(task_id, heartbeat=False)
    guard.checkpoint()
    guard.close()
    keys = KeyNames(prefix)
    assert not rdb.exists(keys.task(task_id), keys.tasks, keys.tasks_ended)


def test_a_refused_heartbeat_is_said_once_and_the_agent_goes_on(
    make_guard: Guards,
    service: EscalationService,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rdb.set(KeyNames(prefix).task(task_id), "not a hash")
    guard = make_guard(task_id, heartbeat_interval=0.05)
    with AgentLoop(guard) as loop:
        assert loop.advances()
        eventually(lambda: caplog.text.count("was not written") >= 1)
        assert loop.advances()
        assert caplog.text.count("was not written") == 1
        service.kill(task_id, OPERATOR, "still obeyed")
        assert isinstance(loop.ended_with(), TaskKilled)


def test_bad_heartbeat_options_are_refused(redis_url: str, prefix: str) -> None:
    for options, message in (
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": 5, "heartbeat_ttl": 5}, "heartbeat_ttl"),
        ({"task_type": " "}, "task_type"),
    ):
        with pytest.raises(ValueError, match=message):
            TaskGuard("t-1", url=redis_url, prefix=prefix, **options)  # type: ignore[arg-type]
