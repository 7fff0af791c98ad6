"""The asyncio guard's side of its event loop's shared subscriber
(`aio_shared.AsyncSharedSubscriber`): its seat there, what the subscriber's task calls
when the guard's view changed (a kill cancels the protected blocks at once), and the
heartbeat it writes through the subscriber's group writer. No task of its own."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import redis
import redis.asyncio as aioredis

from . import aio_shared
from .fleet import TaskState
from .shared_view import Seat
from .view import GuardView

if TYPE_CHECKING:
    from .protection import Protection


class ReaderTask(GuardView):
    """What AsyncTaskGuard hands to the shared subscriber. The guard sets these up in its
    constructor."""

    _changed_event: asyncio.Event
    _first_read: asyncio.Event
    _waiters: dict[str, asyncio.Event]
    _decisions: dict[str, str]
    _protections: set[Protection]
    _hub: aio_shared.AsyncSharedSubscriber | None
    _seat: Seat | None

    @property
    def _redis(self) -> aioredis.Redis:
        client: aioredis.Redis = self._client()
        return client

    def _notify(self) -> None:
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    def _join(self) -> None:
        self._hub = hub = aio_shared.acquire(self._url, self._socket_timeout, self._given)
        self._commands = hub.client
        self._seat = Seat(
            core=self._core,
            push=self._push,
            heartbeat=self._heartbeat,
            lock=contextlib.nullcontext(),
            changed=self._changed,
            decided=self._decided,
            started=self._first_read.set,
            beat_answered=self._beat_answered,
        )
        hub.join(self._seat)

    def _leave(self) -> None:
        hub, seat = self._hub, self._seat
        if hub is not None and seat is not None:
            hub.leave(seat)

    async def _release(self) -> None:
        hub, self._hub = self._hub, None
        if hub is not None:
            await aio_shared.release(hub)
        self._commands = None

    def _changed(self) -> None:
        """The view changed (on the subscriber's task). A kill cancels the protected
        blocks; their `killed` is written by the subscriber, with the others'."""
        self._notify()
        core = self._core
        if not core.is_killed:
            return
        error = core.killed_error()
        fired = False
        for protection in list(self._protections):
            fired = protection.fire(error) or fired
        for waiter in self._waiters.values():
            waiter.set()
        hub, seat = self._hub, self._seat
        owed = fired and core.set_activity("killed") and self._heartbeat is not None
        if owed and hub is not None and seat is not None:
            hub.owe_beat(seat)

    def _decided(self, escalation_id: str, raw: str) -> None:
        waiter = self._waiters.get(escalation_id)
        if waiter is not None:
            self._decisions[escalation_id] = raw
            waiter.set()

    def _watch(self, key: str, *, on: bool) -> None:
        hub, seat = self._hub, self._seat
        if hub is not None and seat is not None and self._push:
            (hub.watch if on else hub.unwatch)(seat, key)

    # ------------------------------------------------------------------ the heartbeat

    async def _write_beat(self, *, ended: bool = False) -> None:
        hub, seat = self._hub, self._seat
        if self._heartbeat is None or hub is None or seat is None:
            return
        await hub.beats.write([(seat, ended)])

    async def _report(self, state: TaskState, *, was: tuple[TaskState, ...] | None = None) -> None:
        """The agent's code path changed what it is doing: written now, best effort (a
        failure waits for the next heartbeat; the subscriber says when Redis is down)."""
        if self._core.set_activity(state, was=was):
            with contextlib.suppress(redis.RedisError):
                await self._write_beat()
