"""The fleet's view of a task (CONTRACTS §10) and what an agent reports (§9), without I/O:
the fields of `task:{task_id}` and the commands that keep it fresh, the fields of an
`agent-signals` entry, and the failure an exception makes."""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Literal

from escbot_agent.clock import iso, utcnow
from escbot_agent.contracts import SIGNAL_DETAIL_LIMIT, SignalEntry
from escbot_agent.keys import KeyNames

from .payloads import StreamFields

TaskState = Literal["running", "paused", "waiting", "killed", "finished"]
DAY = 24 * 3600.0  # `tasks` and `tasks:ended` keep a day of tasks
HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_TTL = 30.0  # the contract's: a task not seen for 30 s is not live


def check_task_type(task_type: str | None) -> str | None:
    if task_type is None:
        return None
    if not isinstance(task_type, str) or not task_type.strip() or len(task_type.strip()) > 200:
        raise ValueError("task_type must be a name of 1 to 200 characters")
    return task_type.strip()


class Heartbeat:
    """What `task:{task_id}` says of one guard, and the commands that keep it fresh: the
    hash with its TTL, `tasks` (score: last seen) trimmed to a day, and on close
    `tasks:ended`. Queued on one MULTI pipeline, so the hash never lacks its TTL."""

    def __init__(
        self,
        keys: KeyNames,
        task_id: str,
        agent: str,
        task_type: str | None,
        *,
        interval: float,
        ttl: float,
    ) -> None:
        if not interval > 0:
            raise ValueError("heartbeat_interval must be a positive number of seconds")
        if not ttl > interval:
            raise ValueError("heartbeat_ttl must be longer than heartbeat_interval")
        self.interval = interval
        self.ttl_ms = max(1, round(ttl * 1000))
        self.key = keys.task(task_id)
        self.tasks_key = keys.tasks
        self.ended_key = keys.tasks_ended
        self.task_id = task_id
        self.agent = agent
        self.task_type = task_type or ""
        self.host = socket.gethostname()
        self.started_at = iso(utcnow())

    def start(self) -> None:
        self.started_at = iso(utcnow())

    def fields(self, state: TaskState, step: str) -> dict[str, str]:
        return {
            "agent": self.agent,
            "task_type": self.task_type,
            "state": state,
            "step": step,
            "host": self.host,
            "pid": str(os.getpid()),
            "started_at": self.started_at,
            "seen_at": iso(utcnow()),
        }

    def queue(self, pipe: Any, state: TaskState, step: str, *, ended: bool = False) -> None:
        """Queue one heartbeat on a (sync or asyncio) pipeline; `ended` when the guard
        closes, which also records the task in `tasks:ended`."""
        now = time.time()
        cutoff = f"({now - DAY!r}"  # exclusive: older than a day
        pipe.hset(self.key, mapping=self.fields(state, step))
        pipe.pexpire(self.key, self.ttl_ms)
        pipe.zadd(self.tasks_key, {self.task_id: now})
        pipe.zremrangebyscore(self.tasks_key, "-inf", cutoff)
        if ended:
            pipe.zadd(self.ended_key, {self.task_id: now})
            pipe.zremrangebyscore(self.ended_key, "-inf", cutoff)


def number_text(value: float) -> str:
    """A signal's value on the wire: `3`, `0.25`, `1e+20`."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def signal_fields(
    task_id: str, agent: str, name: str, value: float, detail: str | None
) -> StreamFields:
    """An `agent-signals` entry, validated with the contract's model (nothing is written
    when it does not validate)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a signal's value must be a number, not {type(value).__name__}")
    entry = SignalEntry(
        task_id=task_id,
        agent=agent,
        signal=name,
        value=value,
        detail="" if detail is None else detail,
        at=iso(utcnow()),
    )
    return {
        "task_id": entry.task_id,
        "agent": entry.agent,
        "signal": entry.signal,
        "value": number_text(entry.value),
        "detail": entry.detail,
        "at": entry.at,
    }


def failure_detail(exc: BaseException) -> str:
    """The `detail` of a failure signal: the exception's type and its message's first line."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    lines = str(exc).strip().splitlines()
    text = f"{name}: {lines[0].strip()}" if lines else name
    return text[:SIGNAL_DETAIL_LIMIT]
