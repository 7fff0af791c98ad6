"""The demo agent, run as a process, obeys the bot's service and the break-glass CLI."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.core import EscalationService
from bot.intake import Intake
from bot.keys import KeyNames
from tests.agent.conftest import opened
from tests.conftest import OPERATOR, POLICY_YAML
from tests.support.cli import Cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo_agent.py"


class Demo:
    """The demo's process, its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(DEMO), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The next line matching `pattern` (earlier lines are kept in `lines`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; got {self.lines}") from None
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def steps_seen(self) -> int:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return sum(1 for line in self.lines if line.startswith("step "))


@pytest.fixture
def demo_env(redis_url: str, prefix: str) -> dict[str, str]:
    return os.environ | {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, prefix: str, database_url: str) -> Cli:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    return Cli(
        tmp_path,
        {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": database_url},
    )


@pytest.fixture
def demo(demo_env: dict[str, str], task_id: str) -> Iterator[Demo]:
    args = ["--task-id", task_id, "--steps", "500", "--step-seconds", "0.05"]
    running = Demo([*args, "--approval-at", "2", "--approval-timeout", "30"], demo_env)
    yield running
    if running.process.poll() is None:
        running.process.kill()
    running.process.wait(10)


def test_the_demo_agent_obeys_approval_redirect_pause_and_kill(
    demo: Demo, cli: Cli, intake: Intake, service: EscalationService, task_id: str
) -> None:
    demo.expect(rf"working on {task_id} \(state: running\)")
    escalation_id = demo.expect(r"asking for approval: .* \(escalation (\S+)\)").group(1)
    view = opened(intake, service, escalation_id)
    assert view.action is not None and view.action["name"] == "issue_refund"
    assert view.action["args"] == {"amount": 740, "currency": "EUR"}
    decided = cli(
        "decide", escalation_id, "approve", "--comment", "within goodwill", "--by", "alice"
    )
    assert decided.code == 0, decided.err
    demo.expect(r"approved by cli:alice \(within goodwill\): refunding 740 EUR")

    service.redirect(task_id, OPERATOR, "use the EUR ledger")  # as /agent redirect does
    demo.expect(rf"redirected by {OPERATOR}: use the EUR ledger")
    demo.expect(r"step \d+/500: .* \(following: use the EUR ledger\)")

    assert cli("pause", task_id, "--reason", "checking", "--by", "alice").code == 0
    demo.expect(rf"pause:{task_id} is set by cli:alice: checking")
    held = demo.steps_seen()
    time.sleep(0.5)
    assert demo.steps_seen() <= held + 1  # at most the step in flight
    assert cli("resume", task_id, "--by", "alice").code == 0
    demo.expect(rf"pause:{task_id} is lifted")
    demo.expect(r"step \d+/500")

    assert cli("kill", task_id, "--reason", "demo over", "--by", "alice").code == 0
    demo.expect(r"killed by cli:alice: demo over; stopping now")
    assert demo.process.wait(10) == 3


def test_the_demo_agent_is_restarted_then_abandoned(
    demo: Demo,
    cli: Cli,
    intake: Intake,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    demo.expect(rf"working on {task_id} \(state: running\)")
    escalation_id = demo.expect(r"asking for approval: .* \(escalation (\S+)\)").group(1)
    opened(intake, service, escalation_id)
    assert cli("decide", escalation_id, "approve", "--by", "alice").code == 0
    demo.expect(r"approved by cli:alice")

    assert cli("pause", task_id, "--reason", "wrong amount", "--by", "alice").code == 0
    demo.expect(rf"pause:{task_id} is set by cli:alice: wrong amount")
    restarted = cli("restart", task_id, "refund 500 EUR, not 740", "--by", "alice")
    assert restarted.code == 0, restarted.err
    demo.expect(r"restarted by cli:alice: refund 500 EUR, not 740; this step starts over")
    demo.expect(r"step \d+/500: .* \(following: refund 500 EUR, not 740\)")

    abandoned = cli("abandon", task_id, "--explanation", "Sorry, we stopped.", "--by", "alice")
    assert abandoned.code == 0, abandoned.err
    demo.expect(r"killed by cli:alice: abandoned: Sorry, we stopped.; stopping now")
    demo.expect(r"the bot has told the customer")
    assert demo.process.wait(10) == 3
    [(_id, outcome)] = rdb.xrange(f"{prefix}outcomes")
    assert outcome["status"] == "abandoned" and outcome["notice"] == "Sorry, we stopped."
    assert outcome["by"] == "cli:alice" and outcome["agent"] == "demo-agent"


def test_the_demo_agent_refunds_what_two_people_approved_as_edited(
    demo_env: dict[str, str],
    cli: Cli,
    intake: Intake,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    args = ["--task-id", task_id, "--steps", "3", "--step-seconds", "0.01", "--approval-at", "1"]
    demo = Demo([*args, "--approvals", "2", "--approval-timeout", "30"], demo_env)
    escalation_id = demo.expect(r"asking for approval: .* \(escalation (\S+)\)").group(1)
    assert opened(intake, service, escalation_id).approvals_needed == 2
    too_much = cli(
        "decide",
        escalation_id,
        "approve",
        "--args",
        '{"amount": 900, "currency": "EUR"}',
        "--by",
        "alice",
    )
    assert too_much.code == 1 and "900 is greater than the maximum of 740" in too_much.err
    edited = '{"amount": 500, "currency": "EUR"}'
    first = cli("decide", escalation_id, "approve", "--args", edited, "--by", "alice")
    assert first.code == 0 and "Approval 1 of 2" in first.out, first.err
    moved = cli("escalate", escalation_id, "--by", "alice")
    assert moved.code == 0 and "to review" in moved.out, moved.err
    assert cli("decide", escalation_id, "approve", "--by", "bob").code == 0
    demo.expect(r"approved by cli:bob with cli:alice, cli:bob: refunding 500 EUR \(as edited\)")
    demo.expect(r"^done$")
    assert demo.process.wait(10) == 0
    ((_, outcome),) = rdb.xrange(KeyNames(prefix).outcomes)
    assert outcome["notice"] == "Your refund of 500 EUR is on its way."


def test_the_demo_agent_reports_its_costs_and_its_end(
    demo_env: dict[str, str], rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    args = ["--task-id", task_id, "--steps", "3", "--step-seconds", "0.01"]
    finished = Demo(args, demo_env)
    finished.expect(r"^done$")
    assert finished.process.wait(10) == 0
    keys = KeyNames(prefix)
    signals = [fields for _, fields in rdb.xrange(keys.signals)]
    assert [(s["task_id"], s["agent"], s["signal"], s["value"]) for s in signals] == [
        (task_id, "demo-agent", "cost", "0.02")
    ] * 3
    assert signals[0]["detail"] == "step 1: read the customer's email"
    ((_, outcome),) = rdb.xrange(keys.outcomes)
    assert (outcome["task_id"], outcome["status"], outcome["task_type"]) == (
        task_id,
        "completed",
        "refund",
    )
    row = rdb.hgetall(keys.task(task_id))
    assert (row["state"], row["task_type"], row["step"]) == (
        "finished",
        "refund",
        "check the refund policy",
    )
    assert rdb.zscore(keys.tasks_ended, task_id) is not None
