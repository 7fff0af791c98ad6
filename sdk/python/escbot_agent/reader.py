"""The sync guard's side of the process's shared subscriber (`shared.SharedSubscriber`):
its seat there, what the subscriber's thread calls when the guard's view changed, and
the heartbeat it writes through the subscriber's group writer. No thread of its own."""

from __future__ import annotations

import contextlib
import threading

import redis

from . import shared
from .fleet import TaskState
from .shared_view import Seat
from .view import GuardView


class ReaderThread(GuardView):
    """What TaskGuard hands to the shared subscriber. The guard sets these up in its
    constructor."""

    _cond: threading.Condition
    _first_read: threading.Event
    _waiters: dict[str, threading.Event]
    _decisions: dict[str, str]
    _hub: shared.SharedSubscriber | None
    _seat: Seat | None

    @property
    def _redis(self) -> redis.Redis:
        client: redis.Redis = self._client()
        return client

    def _join(self) -> None:
        self._hub = hub = shared.acquire(self._url, self._socket_timeout, self._given)
        self._commands = hub.client
        self._seat = Seat(
            core=self._core,
            push=self._push,
            heartbeat=self._heartbeat,
            lock=self._cond,
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

    def _release(self) -> None:
        hub, self._hub = self._hub, None
        if hub is not None:
            shared.release(hub)
        self._commands = None

    def _changed(self) -> None:
        """The view changed (on the subscriber's thread, under the guard's lock)."""
        self._cond.notify_all()
        if self._core.is_killed:
            for waiter in self._waiters.values():
                waiter.set()

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

    def _write_beat(self, *, ended: bool = False) -> None:
        hub, seat = self._hub, self._seat
        if self._heartbeat is None or hub is None or seat is None:
            return
        hub.beats.write([(seat, ended)])

    def _report(self, state: TaskState, *, was: tuple[TaskState, ...] | None = None) -> None:
        """The agent's code path changed what it is doing: written now, best effort (a
        failure waits for the next heartbeat; the subscriber says when Redis is down)."""
        with self._cond:
            changed = self._core.set_activity(state, was=was)
        if changed:
            with contextlib.suppress(redis.RedisError):
                self._write_beat()
