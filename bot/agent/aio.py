"""`AsyncTaskGuard`: the asyncio guard. Same behaviour as `TaskGuard`, plus `protect()` /
`run()`: a kill cancels the protected task at once, wherever it is awaiting, instead of
waiting for its next checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, TypeVar, Unpack

import redis
import redis.asyncio as aioredis

from bot.contracts import Kind

from .aio_client import _wait, connect, is_killed  # noqa: F401  # is_killed: public here too
from .errors import ControlPlaneUnreachable
from .guard import RETRY_MAX
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
    describe,
    escalation_not_written,
    event_fields,
    event_not_written,
    expired_outcome,
    expiry_note,
    outcome_fields,
    parse_decision,
)
from .protection import Protection
from .view import GuardView

log = logging.getLogger("bot.agent")

_monotonic = time.monotonic
T = TypeVar("T")


class AsyncTaskGuard(GuardView):
    """The asyncio guard for one task. Parameters as `TaskGuard`; `redis=` takes a
    `redis.asyncio.Redis`.

        async with AsyncTaskGuard("refund-4711", agent="billing-agent") as guard:
            while work_left():
                for message in await guard.checkpoint():
                    ...
                await guard.run(one_step())  # a kill cancels it mid-await: TaskKilled
    """

    _redis: aioredis.Redis

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
        self._changed = asyncio.Event()
        self._first_read = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Event] = {}
        self._protections: set[Protection] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> AsyncTaskGuard:
        if self._closed:
            raise RuntimeError("this guard is closed; make a new one")
        if self._reader is None:
            self._reader = asyncio.create_task(self._serve(), name=f"escbot-guard:{self.task_id}")
            await _wait(self._first_read, self._start_timeout)
        return self

    async def aclose(self, *, took_last: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._notify()  # a checkpoint waiting in another task ends
            acks = self._core.closing_acks(took_last=took_last)
            if acks:
                with contextlib.suppress(redis.RedisError):
                    await self._redis.xack(self._core.inbox_key, self._core.consumer, *acks)
        if self._own_client:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncTaskGuard:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(took_last=exc_type is None)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> GuardState:
        return "closed" if self._closed else self._core.state(_monotonic())

    # ------------------------------------------------------------------ checkpoint, protect

    async def checkpoint(self, max_pause: float | None = None) -> list[InboxMessage]:
        """As `TaskGuard.checkpoint`, awaiting instead of blocking while paused."""
        core = self._core
        if core.quiet and _monotonic() < core.fresh_until:
            return []
        return await self._checkpoint(max_pause)

    def protect(self) -> Protection:
        """`async with guard.protect(): ...`: a kill cancels the block within milliseconds
        (one round trip after the announcement) and it raises TaskKilled."""
        return Protection(self)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` under `protect()`: its result, or TaskKilled on a kill."""
        async with self.protect():
            return await awaitable

    async def _checkpoint(self, max_pause: float | None) -> list[InboxMessage]:
        core = self._core
        core.confirm_taken()
        held_since = _monotonic()
        while True:
            if self._reader is None:
                raise RuntimeError(
                    "the guard is not running: `async with AsyncTaskGuard(...) as guard:`"
                )
            step, wait = core.hold(_monotonic(), held_since, max_pause)
            if step != "wait":
                break
            await _wait(self._changed, wait)
        if step == "go-blind":
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
        written = False
        raw = None
        try:
            while True:
                woken.clear()
                try:
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
                await _wait(woken, min(remaining, core.reread_interval))
        finally:
            self._waiters.pop(eid, None)
        if raw is None:
            if written:
                with contextlib.suppress(ControlPlaneUnreachable):
                    await self.say(expiry_note(timeout), eid)
            return expired_outcome(eid, timeout)
        outcome = parse_decision(eid, raw)
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
        fields = outcome_fields(self.task_id, self._core.agent, status, notice, task_type)
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

    # ------------------------------------------------------------------ the reader task

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _serve(self) -> None:
        while True:
            try:
                if self._push:
                    await self._listen()
                else:
                    await self._poll()
            except Exception as exc:
                self._failures += 1
                if self._failures == 1:
                    continue  # a dropped connection is not an outage: reconnect at once
                if not isinstance(exc, redis.RedisError | OSError):
                    log.exception("agent guard for %s: unexpected error", self.task_id)
                self._core.mark_unreachable(describe(exc), _monotonic())
                self._notify()
                self._first_read.set()
                await asyncio.sleep(min(RETRY_MAX, 0.05 * 2 ** (self._failures - 2)))

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self.keys.control)
            deadline = _monotonic() + self._start_timeout
            while True:  # once confirmed, no announcement can slip past the re-read below
                message = await pubsub.get_message(timeout=max(0.0, deadline - _monotonic()))
                if message is not None and message["type"] == "subscribe":
                    break
                if _monotonic() >= deadline:
                    raise redis.TimeoutError("SUBSCRIBE was not confirmed")
            await self._sync(reconnected=True)
            while True:
                wait = self._next_sync - _monotonic()
                if wait <= 0:
                    await self._sync()
                    continue
                message = await pubsub.get_message(timeout=wait)
                resync = False
                while message is not None:
                    resync = self._on_message(message) or resync
                    message = await pubsub.get_message(timeout=0)
                if resync:
                    await self._sync(full=False)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    async def _poll(self) -> None:
        await self._sync(reconnected=True)
        while True:
            await asyncio.sleep(max(0.0, self._next_sync - _monotonic()))
            await self._sync()

    def _on_message(self, message: dict[str, Any]) -> bool:
        """Handle one message; True when the control keys must be re-read."""
        resync, decided = self._core.on_message(message)
        waiter = self._waiters.get(decided) if decided else None
        if waiter is not None:
            waiter.set()
        return resync

    async def _sync(self, *, full: bool = True, reconnected: bool = False) -> None:
        """Re-read the control keys (MGET); `full` adds the inbox's newest entry."""
        core = self._core
        if full:
            pipe = self._redis.pipeline(transaction=False)
            core.queue_reread(pipe)
            values, top = await pipe.execute()
        else:
            values = await self._redis.mget(*core.control_keys)
        now = _monotonic()
        if reconnected:
            core.reconnected()
        if full:
            core.apply_inbox_top(top)
            self._next_sync = now + core.reread_interval
        core.apply_controls(values, now)
        if core.is_killed:
            error = core.killed_error()
            for protection in list(self._protections):
                protection.fire(error)
            for waiter in self._waiters.values():
                waiter.set()
        self._notify()
        self._failures = 0
        self._first_read.set()
