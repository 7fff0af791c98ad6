"""`TaskGuard`: the synchronous guard an agent holds for one task.

A background thread subscribes to `{prefix}control` and keeps a local view of the task's
keys (`kill:{task_id}`, `kill:all`, `pause:{task_id}`), re-read in one round trip on every
(re)connect, on every announcement that concerns the task, and every `reread_interval`
seconds. `checkpoint()` reads that view: when nothing changed it does not touch Redis.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Unpack

import redis

from bot.contracts import Kind
from bot.control import connect
from bot.ids import check_task_id
from bot.keys import KeyNames

from .errors import ControlPlaneUnreachable
from .payloads import (
    ApprovalOutcome,
    EscalationOptions,
    FailMode,
    FinishStatus,
    GuardState,
    InboxMessage,
    InboxPlan,
    as_text,
    check_timeout,
    decision_unreadable,
    escalation_not_written,
    event_fields,
    event_not_written,
    expired_outcome,
    expiry_note,
    outcome_fields,
    parse_decision,
)
from .reader import ReaderThread

log = logging.getLogger("bot.agent")

_monotonic = time.monotonic
RETRY_MAX = 1.0  # seconds between reconnection attempts, at most


def is_killed(client: redis.Redis, task_id: str, *, prefix: str = "") -> bool:
    """The original notes' check, `r.exists(f"kill:{task_id}") or r.exists("kill:all")`,
    in one round trip. No guard, no thread: for agents that want one line."""
    keys = KeyNames(prefix)
    return bool(client.exists(keys.kill(check_task_id(task_id)), keys.kill_all))


class TaskGuard(ReaderThread):
    """Obey kills, pauses and redirects for one task; ask for approval; talk in the thread.

        with TaskGuard("refund-4711", agent="billing-agent") as guard:
            while work_left():
                for message in guard.checkpoint():
                    ...  # a redirect or an operator's message
                do_one_step()

    - `url`, `prefix`: default to the bot's `REDIS_URL` and `REDIS_KEY_PREFIX`. `redis=`
      shares a client of yours instead (its timeouts and retries then apply).
    - `agent`: the name on escalations. `consumer`: this reader of the inbox (default the
      agent's name); keep it stable across restarts, so a restart resumes the inbox.
    - `on_unreachable`: "pause" (fail closed, the default), "raise" or "continue" (fail
      open): what a checkpoint does while Redis cannot be read.
    - `reread_interval`: seconds between re-reads of the keys, the bound on how late a kill
      whose announcement was lost is seen. `push=False`: no subscription, re-reads only.
    - `socket_timeout`: for the client the guard makes from `url`.

    Its methods may be called from any thread.
    """

    _redis: redis.Redis

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
        )
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._first_read = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None
        self._waiters: dict[str, threading.Event] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TaskGuard:
        """Start the background reader and wait (briefly) for its first read."""
        if self._closed:
            raise RuntimeError("this guard is closed; make a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name=f"escbot-guard:{self.task_id}", daemon=True
            )
            self._thread.start()
            self._first_read.wait(self._start_timeout)
        return self

    def close(self, *, took_last: bool = True) -> None:
        """Stop the reader and acknowledge what the agent took. `took_last=False` leaves the
        last batch pending, so that a restart with the same consumer gets it again."""
        if self._closed:
            return
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._interrupt()
            thread.join(self._start_timeout)
            with self._cond:
                self._cond.notify_all()  # a checkpoint waiting in another thread ends
                acks = self._core.closing_acks(took_last=took_last)
            if acks:
                with contextlib.suppress(redis.RedisError):
                    self._redis.xack(self._core.inbox_key, self._core.consumer, *acks)
        if self._own_client:
            self._redis.close()

    def __enter__(self) -> TaskGuard:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(took_last=exc_type is None)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> GuardState:
        if self._closed:
            return "closed"
        with self._cond:
            return self._core.state(_monotonic())

    # ------------------------------------------------------------------ the checkpoint

    def checkpoint(self, max_pause: float | None = None) -> list[InboxMessage]:
        """Call at the top of each step. Raises TaskKilled when killed; waits while paused
        (PauseTimeout past `max_pause` seconds); returns the inbox entries that are new to
        this consumer. They are acknowledged at the next checkpoint, or by `ack()`."""
        core = self._core
        if core.quiet and _monotonic() < core.fresh_until:
            return []
        return self._checkpoint(max_pause)

    def _checkpoint(self, max_pause: float | None) -> list[InboxMessage]:
        core = self._core
        held_since = _monotonic()
        if core.announced:
            self._read_announced()
        with self._cond:
            core.confirm_taken()
            while True:
                if self._thread is None:
                    raise RuntimeError("the guard is not running: `with TaskGuard(...) as guard:`")
                step, wait = core.hold(_monotonic(), held_since, max_pause)
                if step != "wait":
                    break
                self._cond.wait(wait)
            if step == "go-blind":
                return []
            plan = core.plan_inbox()
        return self._inbox(plan)

    def _read_announced(self) -> None:
        """Read the keys an announcement named, in this thread: one round trip, and no
        wait for the reader thread to wake twice (for the announcement, for the reply).
        The reader reads them too; whichever answer comes first is applied."""
        try:
            values = self._redis.mget(*self._core.control_keys)
        except redis.RedisError:
            return  # the reader thread sees the outage and says so
        with self._cond:
            self._core.apply_controls(values, _monotonic())

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

    # ------------------------------------------------------------------ escalations

    def escalate(
        self,
        reason: str,
        *,
        kind: Kind = "exception",
        action: str | None = None,
        args: Mapping[str, Any] | None = None,
        **options: Unpack[EscalationOptions],
    ) -> str:
        """Write an escalation to `escalations` and return its id (made here unless given:
        retrying with the same id stays one escalation). Does not wait."""
        fields, escalation_id = self._core.escalation(
            reason=reason, kind=kind, action=action, args=args, options=options
        )
        try:
            self._redis.xadd(self.keys.escalations, fields)
        except redis.RedisError as exc:
            raise escalation_not_written(escalation_id, exc) from exc
        return escalation_id

    def request_approval(
        self,
        action: str,
        args: Mapping[str, Any] | None = None,
        *,
        reason: str,
        timeout: float,
        **options: Unpack[EscalationOptions],
    ) -> ApprovalOutcome:
        """Escalate an action of kind `approval` and wait for `decision:{id}`.

        Returns the outcome: approved, rejected, redirected, terminated, or `expired` when
        no decision came within `timeout` seconds (never a rejection). An id whose decision
        already exists returns it at once (a restarted agent resumes). Raises TaskKilled
        if the task is killed while waiting. While Redis is unreachable it keeps trying
        until the timeout, except under `on_unreachable="raise"`.
        """
        check_timeout(timeout)
        fields, eid = self._core.escalation(
            reason=reason, kind="approval", action=action, args=args, options=options
        )
        decision_key = self.keys.decision(eid)
        deadline = _monotonic() + timeout
        woken = threading.Event()
        core = self._core
        with self._cond:
            self._waiters[eid] = woken
        written = False
        raw = None
        try:
            while True:
                woken.clear()
                try:
                    raw = self._redis.get(decision_key)
                    if raw is not None:
                        break
                    with self._cond:  # a decision, even `terminated`, comes first
                        core.check_killed()
                    if not written:
                        self._redis.xadd(self.keys.escalations, fields)
                        written = True
                except redis.RedisError as exc:
                    if core.on_unreachable == "raise":
                        raise decision_unreadable(decision_key, eid, exc) from exc
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    break
                woken.wait(min(remaining, core.reread_interval))
        finally:
            with self._cond:
                self._waiters.pop(eid, None)
        if raw is None:
            if written:
                with contextlib.suppress(ControlPlaneUnreachable):
                    self.say(expiry_note(timeout), eid)
            return expired_outcome(eid, timeout)
        outcome = parse_decision(eid, raw)
        with self._cond:
            core.note_outcome(outcome)
        return outcome

    def finish(
        self,
        status: FinishStatus = "completed",
        notice: str | None = None,
        *,
        task_type: str | None = None,
    ) -> str:
        """Tell the bot the task ended: `completed` (it may be sampled for review, per the
        policy's `reviews:`) or `failed`; `notice` is a sentence for the end user. Returns
        the `outcomes` entry id."""
        fields = outcome_fields(self.task_id, self._core.agent, status, notice, task_type)
        try:
            return as_text(self._redis.xadd(self.keys.outcomes, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.outcomes, exc) from exc

    def say(self, text: str, escalation_id: str | None = None) -> str:
        """Write to `agent-events`: posted in the escalation's thread. Returns the entry id."""
        fields = event_fields(self.task_id, text, escalation_id)
        try:
            return as_text(self._redis.xadd(self.keys.agent_events, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.agent_events, exc) from exc
