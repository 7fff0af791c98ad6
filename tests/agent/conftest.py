"""Fixtures for the agent SDK: guards on the test's own key prefix, the bot's intake, the
agent-wide stops as the bot writes them, and a loop in a thread that behaves like an
agent."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis
from escbot_agent import InboxMessage, TaskGuard

from bot.clock import iso, utcnow
from bot.control import connect
from bot.core import EscalationService
from bot.errors import UnknownEscalation
from bot.intake import Intake
from bot.keys import KeyNames
from bot.records import EscalationRecord
from tests.support.waiting import wait_until

T = TypeVar("T")
REREAD = 0.2  # seconds; short so that the tests that rely on the re-read finish quickly


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """The SDK talks to Redis only; the service's database is the same either way (the
    service tests cover both), so these run on SQLite."""
    return request.param


@pytest.fixture
def task_id() -> str:
    return f"task-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_guard(redis_url: str, prefix: str) -> Iterator[Callable[..., TaskGuard]]:
    guards: list[TaskGuard] = []

    def make(task_id: str, **options: Any) -> TaskGuard:
        options.setdefault("url", redis_url)
        options.setdefault("prefix", prefix)
        options.setdefault("reread_interval", REREAD)
        guard = TaskGuard(task_id, **options)
        guards.append(guard)
        return guard.start()

    yield make
    for guard in guards:
        guard.close()


@pytest.fixture
def intake(redis_url: str, prefix: str, service: EscalationService) -> Iterator[Intake]:
    client = connect(redis_url)
    reader = Intake(client, KeyNames(prefix), service, consumer="test", block_ms=20)
    reader.ensure_group()
    yield reader
    client.close()


class Switches:
    """Kill and pause keys as the bot writes them (CONTRACTS §2, §10): the JSON value,
    then the key's name announced on `control` and the change on `control:{key}`."""

    def __init__(self, client: redis.Redis, keys: KeyNames) -> None:
        self.client = client
        self.keys = keys

    def set(self, key: str, reason: str, by: str = "U0OPERATOR") -> None:
        value = {"reason": reason, "by": by, "at": iso(utcnow()), "escalation_id": None}
        self.client.set(key, json.dumps(value))
        self._announce(key, "set", value)

    def lift(self, key: str) -> None:
        self.client.delete(key)
        self._announce(key, "delete", None)

    def _announce(self, key: str, op: str, value: dict[str, Any] | None) -> None:
        self.client.publish(self.keys.control, key)
        name = key.removeprefix(self.keys.prefix)
        message = json.dumps({"key": name, "op": op, "value": value})
        self.client.publish(self.keys.announcements(name), message)


@pytest.fixture
def switches(rdb: redis.Redis, prefix: str) -> Switches:
    return Switches(rdb, KeyNames(prefix))


def eventually(check: Callable[[], T], *, timeout: float = 5.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    return wait_until(check, timeout, what or str(check), every=0.01)


def opened(intake: Intake, service: EscalationService, escalation_id: str) -> EscalationRecord:
    """The bot's intake reads the stream until the escalation is stored."""

    def look() -> EscalationRecord | None:
        intake.poll_once(block_ms=20)
        try:
            return service.get_escalation(escalation_id)
        except UnknownEscalation:
            return None

    return eventually(look, what=f"escalation {escalation_id} to be opened")


def pending_count(rdb: redis.Redis, stream: str, group: str) -> int:
    try:
        return int(rdb.xpending(stream, group)["pending"])
    except redis.ResponseError:  # no such group
        return 0


class AgentLoop:
    """An agent's loop in a thread: checkpoint, a short step, again; until it raises."""

    def __init__(self, guard: TaskGuard, *, max_pause: float | None = None) -> None:
        self.guard = guard
        self.max_pause = max_pause
        self.steps = 0
        self.messages: list[InboxMessage] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.messages.extend(self.guard.checkpoint(self.max_pause))
                self.steps += 1
                time.sleep(0.002)
        except BaseException as exc:  # TaskKilled is a BaseException on purpose
            self.error = exc
        finally:
            self.done.set()

    def __enter__(self) -> AgentLoop:
        self._thread.start()
        eventually(lambda: self.steps > 0 or self.done.is_set(), what="the loop to start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def ended_with(self, timeout: float = 5.0) -> BaseException | None:
        assert self.done.wait(timeout), "the loop did not end"
        return self.error

    def holds(self, seconds: float = 0.5) -> bool:
        """No step for `seconds`, beyond the one that may have been in flight."""
        held = self.steps
        time.sleep(seconds)
        return self.steps <= held + 1

    def advances(self) -> bool:
        start = self.steps
        return bool(eventually(lambda: self.steps > start + 2, what="the loop to advance"))
