"""The sync guard's background reader: subscribes to `{prefix}control` and keeps the
guard's view of its task's keys fresh (on every (re)connect, on every announcement that
concerns the task, and every `reread_interval` seconds), and keeps the task's heartbeat
(`task:{task_id}`, `tasks`) fresh every `heartbeat_interval` seconds, waking for whichever
is due first. A checkpoint never pays for either."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

import redis

from .fleet import TaskState
from .payloads import describe
from .view import GuardView

log = logging.getLogger("escbot_agent")

_monotonic = time.monotonic
RETRY_MAX = 1.0  # seconds between reconnection attempts, at most


class ReaderThread(GuardView):
    """What TaskGuard's reader thread runs. The guard sets these up in its constructor."""

    _redis: redis.Redis
    _cond: threading.Condition
    _stop: threading.Event
    _first_read: threading.Event
    _pubsub: Any
    _waiters: dict[str, threading.Event]
    _beat_lock: threading.Lock

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self._push:
                    self._listen()
                else:
                    self._poll()
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._failures += 1
                if self._failures == 1:
                    continue  # a dropped connection is not an outage: reconnect at once
                if not isinstance(exc, redis.RedisError | OSError):
                    log.exception("agent guard for %s: unexpected error", self.task_id)
                with self._cond:
                    self._core.mark_unreachable(describe(exc), _monotonic())
                    self._cond.notify_all()
                self._first_read.set()
                self._stop.wait(min(RETRY_MAX, 0.05 * 2 ** (self._failures - 2)))

    def _listen(self) -> None:
        pubsub = self._redis.pubsub()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        self._pubsub = pubsub
        try:
            pubsub.subscribe(self.keys.control)
            deadline = _monotonic() + self._start_timeout
            while True:  # once confirmed, no announcement can slip past the re-read below
                message = pubsub.get_message(timeout=max(0.0, deadline - _monotonic()))
                if message is not None and message["type"] == "subscribe":
                    break
                if _monotonic() >= deadline:
                    raise redis.TimeoutError("SUBSCRIBE was not confirmed")
            self._beat()
            self._sync(reconnected=True)
            while not self._stop.is_set():
                now = _monotonic()
                if now >= self._next_sync:
                    self._sync()
                    continue
                if now >= self._next_beat:
                    self._beat()
                    continue
                message = pubsub.get_message(timeout=min(self._next_sync, self._next_beat) - now)
                resync = False
                while message is not None:
                    resync = self._on_message(message) or resync
                    message = pubsub.get_message(timeout=0)
                if resync:
                    self._sync(full=False)
        finally:
            self._pubsub = None
            with contextlib.suppress(Exception):
                pubsub.close()

    def _poll(self) -> None:
        self._beat()
        self._sync(reconnected=True)
        while not self._stop.wait(max(0.0, min(self._next_sync, self._next_beat) - _monotonic())):
            now = _monotonic()
            if now >= self._next_sync:
                self._sync()
            if now >= self._next_beat:
                self._beat()

    def _on_message(self, message: dict[str, Any]) -> bool:
        """Handle one message; True when the control keys must be re-read."""
        with self._cond:
            resync, decided = self._core.on_message(message)
            waiter = self._waiters.get(decided) if decided else None
        if waiter is not None:
            waiter.set()
        return resync

    def _sync(self, *, full: bool = True, reconnected: bool = False) -> None:
        """Re-read the control keys (MGET); `full` adds the inbox's newest entry."""
        core = self._core
        if full:
            pipe = self._redis.pipeline(transaction=False)
            core.queue_reread(pipe)
            values, top = pipe.execute()
        else:
            values = self._redis.mget(*core.control_keys)
        now = _monotonic()
        with self._cond:
            if reconnected:
                core.reconnected()
            if full:
                core.apply_inbox_top(top)
                self._next_sync = now + core.reread_interval
            core.apply_controls(values, now)
            self._cond.notify_all()
            if core.is_killed:
                for waiter in self._waiters.values():
                    waiter.set()
        self._failures = 0
        self._first_read.set()

    # ------------------------------------------------------------------ the heartbeat

    def _beat(self) -> None:
        """The periodic heartbeat. A connection error goes up to `_serve`: the reader's
        outage handling (reconnect, and say so once); the agent never sees it."""
        if self._heartbeat is not None:
            self._next_beat = _monotonic() + self._heartbeat.interval
            self._write_beat()

    def _write_beat(self, *, ended: bool = False) -> None:
        beat = self._heartbeat
        if beat is None:
            return
        with self._beat_lock:  # in order: the state written last is the newest
            pipe = self._redis.pipeline(transaction=True)
            beat.queue(pipe, self._core.activity, self._core.step_text(), ended=ended)
            try:
                pipe.execute()
            except redis.ResponseError as exc:
                self._beat_answered(exc)
                return
        self._beat_answered(None)

    def _report(self, state: TaskState, *, was: tuple[TaskState, ...] | None = None) -> None:
        """The agent's code path changed what it is doing: written now, best effort (a
        failure waits for the next heartbeat; the reader says when Redis is down)."""
        with self._cond:
            changed = self._core.set_activity(state, was=was)
        if changed:
            with contextlib.suppress(redis.RedisError):
                self._write_beat()

    def _interrupt(self) -> None:
        """Wake the reader from its blocking read so that close() does not wait for it."""
        connection = getattr(self._pubsub, "connection", None)
        sock = getattr(connection, "_sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
