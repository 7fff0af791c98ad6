"""`TaskGuard`: the synchronous guard an agent holds for one task.

The process's shared subscriber (`shared.py`: one thread and two connections for all the
guards of the process) keeps a local view of the task's keys (`kill:{task_id}`,
`kill:all`, `pause:{task_id}`, `kill:agent:{agent}`, `pause:agent:{agent}`): each key's
announcement carries its new value, and the keys are re-read on every (re)connect and
every `reread_interval` seconds, batched with the other guards due; it also keeps the
task's heartbeat fresh. `checkpoint()` reads that view: when nothing changed it does not
touch Redis.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from types import TracebackType
from typing import Any

import redis

from escbot_agent.connection import connect

from .errors import PauseTimeout, TaskKilled
from .fleet import HEARTBEAT_INTERVAL, HEARTBEAT_TTL
from .payloads import FailMode, GuardState, InboxMessage, InboxPlan, kill_keys
from .writes import GuardWrites

log = logging.getLogger("escbot_agent")

_monotonic = time.monotonic


def is_killed(
    client: redis.Redis, task_id: str, *, prefix: str = "", agent: str | None = None
) -> bool:
    """The original notes' check, `r.exists(f"kill:{task_id}") or r.exists("kill:all")`,
    in one round trip (with `agent`, `kill:agent:{agent}` too). No guard, no thread: for
    agents that want one line."""
    return bool(client.exists(*kill_keys(task_id, prefix, agent)))


class TaskGuard(GuardWrites):
    """Obey kills, pauses and redirects for one task; ask for approval; talk in the thread.

        with TaskGuard("refund-4711", agent="billing-agent") as guard:
            while work_left():
                for message in guard.checkpoint():
                    ...  # a redirect or an operator's message
                do_one_step()

    - `url`, `prefix`: default to the bot's `REDIS_URL` and `REDIS_KEY_PREFIX`. The guards
      of one process on one Redis share one subscriber and two connections. `redis=`
      shares a client of yours instead (its timeouts, retries and pool then apply).
    - `agent`: the name on escalations and signals; `kill:agent:{agent}` and
      `pause:agent:{agent}` stop it with every other task of that name. `task_type`: the
      default of escalations and `finish()`, shown in the fleet. `consumer`: this reader
      of the inbox (default the agent's name); keep it stable across restarts, so a
      restart resumes the inbox.
    - `on_unreachable`: "pause" (fail closed, the default), "raise" or "continue" (fail
      open): what a checkpoint does while Redis cannot be read.
    - `reread_interval`: seconds between re-reads of the keys, the bound on how late a kill
      whose announcement was lost is seen. `push=False`: no subscription, re-reads only.
    - `socket_timeout`: for the client the guard makes from `url`.
    - `heartbeat`: keep `task:{task_id}` and `tasks` fresh every `heartbeat_interval`
      seconds, the hash expiring after `heartbeat_ttl` (the fleet's live tasks).

    Its methods may be called from any thread.
    """

    def __init__(
        self,
        task_id: str,
        *,
        redis: redis.Redis | None = None,
        url: str | None = None,
        prefix: str | None = None,
        agent: str = "agent",
        consumer: str | None = None,
        on_unreachable: FailMode = "pause",
        reread_interval: float = 1.0,
        push: bool = True,
        socket_timeout: float = 2.0,
        task_type: str | None = None,
        heartbeat: bool = True,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_ttl: float = HEARTBEAT_TTL,
    ) -> None:
        self._setup(
            task_id,
            connect,
            redis=redis,
            url=url,
            prefix=prefix,
            agent=agent,
            consumer=consumer,
            on_unreachable=on_unreachable,
            reread_interval=reread_interval,
            push=push,
            socket_timeout=socket_timeout,
            task_type=task_type,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
        )
        self._cond = threading.Condition()
        self._first_read = threading.Event()
        self._hub = None
        self._seat = None
        self._waiters: dict[str, threading.Event] = {}
        self._decisions: dict[str, str] = {}  # announced while request_approval waits

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TaskGuard:
        """Join the process's shared subscriber and wait (briefly) for the first read."""
        if self._closed:
            raise RuntimeError("this guard is closed; make a new one")
        if self._hub is None:
            if self._heartbeat is not None:
                self._heartbeat.start()
            self._join()
            self._first_read.wait(self._start_timeout)
        return self

    def close(self, *, took_last: bool = True) -> None:
        """Stop the reader and acknowledge what the agent took. `took_last=False` leaves the
        last batch pending, so that a restart with the same consumer gets it again."""
        if self._closed:
            return
        self._closed = True
        if self._hub is not None:
            self._leave()
            with self._cond:
                self._cond.notify_all()  # a checkpoint waiting in another thread ends
                acks = self._core.closing_acks(took_last=took_last)
            if acks:
                with contextlib.suppress(redis.RedisError):
                    self._redis.xack(self._core.inbox_key, self._core.consumer, *acks)
            self._core.set_activity("finished")  # a task killed stays `killed`
            with contextlib.suppress(redis.RedisError):
                self._write_beat(ended=True)
            self._release()
        self._reported = None
        if self._standalone is not None:
            self._standalone.close()

    def __enter__(self) -> TaskGuard:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        detail = self._failure_to_report(exc)
        if detail is not None and exc is not None:
            try:
                self.signal("failure", 1, detail)
            except Exception as error:  # best effort: the agent's own exception goes on
                self._failure_not_reported(exc, error)
        self.close(took_last=exc_type is None)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> GuardState:
        if self._closed:
            return "closed"
        with self._cond:
            return self._core.state(_monotonic())

    # ------------------------------------------------------------------ the checkpoint

    def checkpoint(
        self, max_pause: float | None = None, step: str | None = None
    ) -> list[InboxMessage]:
        """Call at the top of each step. Raises TaskKilled when killed; waits while paused
        (PauseTimeout past `max_pause` seconds); returns the inbox entries that are new to
        this consumer. They are acknowledged at the next checkpoint, or by `ack()`.
        `step`: a label for the fleet's view (`task:{task_id}`'s `step`), kept until the
        next label. (An ordinary parameter, not keyword-only: CPython 3.11 does not
        specialise calls to functions with keyword-only ones, which costs the fast path.)"""
        core = self._core
        if step is not None:
            core.step = step
        if _monotonic() < core.quiet_until:
            return []
        return self._checkpoint(max_pause)

    def _checkpoint(self, max_pause: float | None) -> list[InboxMessage]:
        core = self._core
        held_since = _monotonic()
        with self._cond:
            core.confirm_taken()
        try:
            while True:
                with self._cond:
                    if self._hub is None or self._closed:
                        raise RuntimeError(
                            "the guard is not running: `with TaskGuard(...) as guard:`"
                        )
                    go, wait = core.hold(_monotonic(), held_since, max_pause)
                    if go != "wait":
                        plan = core.plan_inbox() if go == "go" else None
                        break
                    held = core.holding_for()
                    if held is None or core.activity == held:
                        self._cond.wait(wait)
                        continue
                self._report(held)  # held at a pause: said at once, outside the lock
        except TaskKilled:
            self._report("killed")
            raise
        except PauseTimeout:
            self._report("running", was=("paused",))  # no longer held: the agent decides
            raise
        if core.activity in ("paused", "killed"):
            self._report("running", was=("paused", "killed"))
        return [] if plan is None else self._inbox(plan)

    def ack(self) -> None:
        """Acknowledge the entries the last checkpoint returned now, not at the next one."""
        with self._cond:
            self._core.confirm_taken()
            plan = self._core.plan_ack()
        self._inbox(plan, strict=True)

    def _inbox(self, plan: InboxPlan, *, strict: bool = False) -> list[InboxMessage]:
        core = self._core
        if plan.empty:
            return []
        try:
            try:
                replies = self._inbox_round_trip(plan)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._create_group()
                replies = self._inbox_round_trip(plan)
        except redis.RedisError as exc:
            with self._cond:
                core.inbox_failed(plan, exc, strict=strict)
            return []
        with self._cond:
            return core.inbox_read(plan, replies)

    def _inbox_round_trip(self, plan: InboxPlan) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        self._core.queue_inbox(pipe, plan)
        return pipe.execute()

    def _create_group(self) -> None:
        try:
            # From the start: what an operator wrote before the agent first ran is not lost.
            self._redis.xgroup_create(self._core.inbox_key, self._core.consumer, "0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
