"""The adapters' examples run as processes against the bot's service: each asks for its
refund, gets the approver's edit, and refunds what was approved; a kill stops one."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.core import EscalationService
from bot.intake import Intake
from tests.agent.conftest import opened
from tests.conftest import OPERATOR

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["langgraph_agent", "openai_agents_agent", "pydantic_ai_agent", "mcp_client"]
WAITING = re.compile(r"waiting for approval: escalation (\S+)")


class Example:
    def __init__(self, name: str, task_id: str, redis_url: str, prefix: str) -> None:
        env = {**os.environ, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / f"{name}.py"), "--task-id", task_id],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(
        self, pattern: re.Pattern[str], intake: Intake, timeout: float = 30
    ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            intake.poll_once(block_ms=10)
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            self.seen.append(line)
            if found := pattern.search(line):
                return found
        raise AssertionError(f"no line matching {pattern.pattern}; saw: {self.seen}")

    def exit_code(self, intake: Intake) -> int:
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            intake.poll_once(block_ms=20)
        return self.process.wait(5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_refunds_what_was_approved(
    name: str, intake: Intake, service: EscalationService, redis_url: str, prefix: str, task_id: str
) -> None:
    example = Example(name, task_id, redis_url, prefix)
    try:
        eid = example.wait_for(WAITING, intake).group(1)
        opened(intake, service, eid)
        service.decide(eid, OPERATOR, "approve", args={"amount": 500, "currency": "EUR"})
        example.wait_for(re.compile(r"^done: .*refunded 500 EUR"), intake)
        assert example.exit_code(intake) == 0
    finally:
        example.stop()


def test_a_kill_stops_an_example_waiting_for_its_approval(
    intake: Intake, service: EscalationService, redis_url: str, prefix: str, task_id: str
) -> None:
    example = Example("pydantic_ai_agent", task_id, redis_url, prefix)
    try:
        eid = example.wait_for(WAITING, intake).group(1)
        opened(intake, service, eid)
        service.kill(task_id, OPERATOR, "demo over")
        example.wait_for(re.compile(rf"killed by {OPERATOR}: demo over"), intake)
        assert example.exit_code(intake) == 3
    finally:
        example.stop()
