"""`AsyncTaskGuard`: the asyncio guard. Same behaviour as `TaskGuard`, plus `protect()` /
`run()`: a kill cancels the protected task at once, wherever it is awaiting, instead of
waiting for its next checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, TypeVar, Unpack

import redis
import redis.asyncio as aioredis

from escbot_agent.contracts import Kind

from .aio_client import _wait, connect, is_killed  # noqa: F401  # is_killed: public here too
from .aio_reader import ReaderTask
from .errors import ControlPlaneUnreachable, PauseTimeout, TaskKilled
from .fleet import HEARTBEAT_INTERVAL, HEARTBEAT_TTL, signal_fields
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
from .protection import Protection

log = logging.getLogger("escbot_agent")

_monotonic = time.monotonic
T = TypeVar("T")


class AsyncTaskGuard(ReaderTask):
    """The asyncio guard for one task. Parameters as `TaskGuard`; `redis=` takes a
    `redis.asyncio.Redis`.

        async with AsyncTaskGuard("refund-4711", agent="billing-agent") as guard:
            while work_left():
                for message in await guard.checkpoint():
                    ...
                await guard.run(one_step())  # a kill cancels it mid-await: TaskKilled
    """

    def __init__(
        self,
        task_id: str,
        *,
        redis: aioredis.Redis | None = None,
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
        self._changed_event = asyncio.Event()
        self._first_read = asyncio.Event()
        self._hub = None
        self._seat = None
        self._waiters: dict[str, asyncio.Event] = {}
        self._decisions: dict[str, str] = {}  # announced while request_approval waits
        self._protections: set[Protection] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> AsyncTaskGuard:
        if self._closed:
            raise RuntimeError("this guard is closed; make a new one")
        if self._hub is None:
            if self._heartbeat is not None:
                self._heartbeat.start()
            self._join()  # this event loop's shared subscriber
            await _wait(self._first_read, self._start_timeout)
        return self

    async def aclose(self, *, took_last: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if self._hub is not None:
            self._leave()
            self._notify()  # a checkpoint waiting in another task ends
            acks = self._core.closing_acks(took_last=took_last)
            if acks:
                with contextlib.suppress(redis.RedisError):
                    await self._redis.xack(self._core.inbox_key, self._core.consumer, *acks)
            self._core.set_activity("finished")  # a task killed stays `killed`
            with contextlib.suppress(redis.RedisError):
                await self._write_beat(ended=True)
            await self._release()
        self._reported = None
        if self._standalone is not None:
            await self._standalone.aclose()

    async def __aenter__(self) -> AsyncTaskGuard:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self._report_failure(exc)
        await self.aclose(took_last=exc_type is None)

    async def _report_failure(self, exc: BaseException) -> None:
        """A `failure` signal for an ordinary exception leaving the guard; best effort."""
        detail = self._failure_to_report(exc)
        if detail is not None:
            try:
                await self.signal("failure", 1, detail)
            except Exception as error:  # the agent's own exception goes on
                self._failure_not_reported(exc, error)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> GuardState:
        return "closed" if self._closed else self._core.state(_monotonic())

    # ------------------------------------------------------------------ checkpoint, protect

    async def checkpoint(
        self, max_pause: float | None = None, step: str | None = None
    ) -> list[InboxMessage]:
        """As `TaskGuard.checkpoint`, awaiting instead of blocking while paused."""
        core = self._core
        if step is not None:
            core.step = step
        if _monotonic() < core.quiet_until:
            return []
        return await self._checkpoint(max_pause)

    def protect(self) -> Protection:
        """`async with guard.protect(): ...`: a kill cancels the block within milliseconds
        (one round trip after the announcement) and it raises TaskKilled."""
        return Protection(self)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` under `protect()`: its result, or TaskKilled on a kill. An
        ordinary exception it raises is reported as a `failure` signal, then raised."""
        try:
            async with self.protect():
                return await awaitable
        except BaseException as exc:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # not started when the kill came first: no warning
            if isinstance(exc, Exception):
                await self._report_failure(exc)
            raise

    async def _checkpoint(self, max_pause: float | None) -> list[InboxMessage]:
        core = self._core
        core.confirm_taken()
        held_since = _monotonic()
        try:
            while True:
                if self._hub is None or self._closed:
                    raise RuntimeError(
                        "the guard is not running: `async with AsyncTaskGuard(...) as guard:`"
                    )
                go, wait = core.hold(_monotonic(), held_since, max_pause)
                if go != "wait":
                    break
                held = core.holding_for()
                if held is not None and core.activity != held:
                    await self._report(held)  # held at a pause: said at once
                    continue
                await _wait(self._changed_event, wait)
        except TaskKilled:
            await self._report("killed")
            raise
        except PauseTimeout:
            await self._report("running", was=("paused",))  # no longer held: the agent decides
            raise
        if core.activity in ("paused", "killed"):
            await self._report("running", was=("paused", "killed"))
        if go == "go-blind":
            return []
        return await self._inbox(core.plan_inbox())

    async def ack(self) -> None:
        """Acknowledge the entries the last checkpoint returned now, not at the next one."""
        self._core.confirm_taken()
        await self._inbox(self._core.plan_ack(), strict=True)

    async def _inbox(self, plan: InboxPlan, *, strict: bool = False) -> list[InboxMessage]:
        core = self._core
        if plan.empty:
            return []
        try:
            try:
                replies = await self._inbox_round_trip(plan)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made meanwhile
                    await self._redis.xgroup_create(
                        core.inbox_key, core.consumer, "0", mkstream=True
                    )
                replies = await self._inbox_round_trip(plan)
        except redis.RedisError as exc:
            core.inbox_failed(plan, exc, strict=strict)
            return []
        return core.inbox_read(plan, replies)

    async def _inbox_round_trip(self, plan: InboxPlan) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        self._core.queue_inbox(pipe, plan)
        return await pipe.execute()

    # ------------------------------------------------------------------ escalations

    async def escalate(
        self,
        reason: str,
        *,
        kind: Kind = "exception",
        action: str | None = None,
        args: Mapping[str, Any] | None = None,
        **options: Unpack[EscalationOptions],
    ) -> str:
        """As `TaskGuard.escalate`."""
        fields, escalation_id = self._core.escalation(
            reason=reason, kind=kind, action=action, args=args, options=options
        )
        try:
            await self._redis.xadd(self.keys.escalations, fields)
        except redis.RedisError as exc:
            raise escalation_not_written(escalation_id, exc) from exc
        return escalation_id

    async def request_approval(
        self,
        action: str,
        args: Mapping[str, Any] | None = None,
        *,
        reason: str,
        timeout: float,
        **options: Unpack[EscalationOptions],
    ) -> ApprovalOutcome:
        """As `TaskGuard.request_approval`."""
        check_timeout(timeout)
        fields, eid = self._core.escalation(
            reason=reason, kind="approval", action=action, args=args, options=options
        )
        decision_key = self.keys.decision(eid)
        deadline = _monotonic() + timeout
        core = self._core
        woken = self._waiters[eid] = asyncio.Event()
        self._watch(decision_key, on=True)
        written = waiting = False
        raw: object = None
        try:
            while True:
                woken.clear()
                try:
                    raw = self._decisions.pop(eid, None)  # announced with its value
                    if raw is None:
                        raw = await self._redis.get(decision_key)
                    if raw is not None:
                        break
                    core.check_killed()  # a decision, even `terminated`, comes first
                    if not written:
                        await self._redis.xadd(self.keys.escalations, fields)
                        written = True
                except redis.RedisError as exc:
                    if core.on_unreachable == "raise":
                        raise decision_unreadable(decision_key, eid, exc) from exc
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    break
                if not waiting:
                    waiting = True
                    await self._report("waiting")
                await _wait(woken, min(remaining, core.reread_interval))
        except TaskKilled:
            await self._report("killed")
            raise
        finally:
            self._waiters.pop(eid, None)
            self._decisions.pop(eid, None)
            self._watch(decision_key, on=False)
            if waiting:
                await self._report("running", was=("waiting",))
        if raw is None:
            if written:
                with contextlib.suppress(ControlPlaneUnreachable):
                    await self.say(expiry_note(timeout), eid)
            return expired_outcome(eid, timeout)
        outcome = parse_decision(eid, raw, args)
        core.note_outcome(outcome)
        return outcome

    async def finish(
        self,
        status: FinishStatus = "completed",
        notice: str | None = None,
        *,
        task_type: str | None = None,
    ) -> str:
        """As `TaskGuard.finish`."""
        core = self._core
        fields = outcome_fields(
            self.task_id, core.agent, status, notice, task_type or core.task_type
        )
        try:
            return as_text(await self._redis.xadd(self.keys.outcomes, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.outcomes, exc) from exc

    async def say(self, text: str, escalation_id: str | None = None) -> str:
        """As `TaskGuard.say`."""
        fields = event_fields(self.task_id, text, escalation_id)
        try:
            return as_text(await self._redis.xadd(self.keys.agent_events, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.agent_events, exc) from exc

    async def signal(self, name: str, value: float = 1, detail: str | None = None) -> str:
        """As `TaskGuard.signal`."""
        fields = signal_fields(self.task_id, self._core.agent, name, value, detail)
        try:
            return as_text(await self._redis.xadd(self.keys.signals, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.signals, exc) from exc
