"""The asyncio guard's reader task: subscribes to `{prefix}control`, keeps the guard's view
of its task's keys fresh (on every (re)connect, on every announcement that concerns the
task, and every `reread_interval` seconds), cancels protected blocks on a kill, and keeps
the task's heartbeat fresh every `heartbeat_interval` seconds, waking for whichever is due
first. A checkpoint never pays for either."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from .fleet import TaskState
from .guard import RETRY_MAX
from .payloads import describe
from .view import GuardView

if TYPE_CHECKING:
    from .protection import Protection

log = logging.getLogger("escbot_agent")

_monotonic = time.monotonic


async def stop(reader: asyncio.Task[None]) -> None:
    """Cancel the reader task and wait until it ended; cancelled again while it has not.
    On Python 3.11, asyncio.wait_for (inside redis-py's commands) can swallow a
    cancellation that lands as the command completes (CPython gh-86296)."""
    while not reader.done():
        reader.cancel()
        await asyncio.wait({reader}, timeout=0.1)
    if not reader.cancelled():
        reader.exception()  # retrieved: _serve only ends by cancellation


class ReaderTask(GuardView):
    """What AsyncTaskGuard's reader task runs. The guard sets these up in its constructor."""

    _redis: aioredis.Redis
    _changed: asyncio.Event
    _first_read: asyncio.Event
    _waiters: dict[str, asyncio.Event]
    _protections: set[Protection]
    _beat_lock: asyncio.Lock

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
            await self._beat()
            await self._sync(reconnected=True)
            while True:
                now = _monotonic()
                if now >= self._next_sync:
                    await self._sync()
                    continue
                if now >= self._next_beat:
                    await self._beat()
                    continue
                wait = min(self._next_sync, self._next_beat) - now
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
        await self._beat()
        await self._sync(reconnected=True)
        while True:
            await asyncio.sleep(max(0.0, min(self._next_sync, self._next_beat) - _monotonic()))
            now = _monotonic()
            if now >= self._next_sync:
                await self._sync()
            if now >= self._next_beat:
                await self._beat()

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
        fired = False
        if core.is_killed:
            error = core.killed_error()
            for protection in list(self._protections):
                fired = protection.fire(error) or fired
            for waiter in self._waiters.values():
                waiter.set()
        self._notify()
        self._failures = 0
        self._first_read.set()
        if fired:  # a protected block ends with TaskKilled: said here, not in its way
            await self._report("killed")

    # ------------------------------------------------------------------ the heartbeat

    async def _beat(self) -> None:
        """The periodic heartbeat. A connection error goes up to `_serve`: the reader's
        outage handling (reconnect, and say so once); the agent never sees it."""
        if self._heartbeat is not None:
            self._next_beat = _monotonic() + self._heartbeat.interval
            await self._write_beat()

    async def _write_beat(self, *, ended: bool = False) -> None:
        beat = self._heartbeat
        if beat is None:
            return
        async with self._beat_lock:  # in order: the state written last is the newest
            pipe = self._redis.pipeline(transaction=True)
            beat.queue(pipe, self._core.activity, self._core.step_text(), ended=ended)
            try:
                await pipe.execute()
            except redis.ResponseError as exc:
                self._beat_answered(exc)
                return
        self._beat_answered(None)

    async def _report(self, state: TaskState, *, was: tuple[TaskState, ...] | None = None) -> None:
        """The agent's code path changed what it is doing: written now, best effort (a
        failure waits for the next heartbeat; the reader says when Redis is down)."""
        if self._core.set_activity(state, was=was):
            with contextlib.suppress(redis.RedisError):
                await self._write_beat()
