"""The threads' shared subscriber: one per process (per Redis), whatever the number of
`TaskGuard`s. One thread and two connections: a subscription to the announcement
channels of the keys its guards obey, and one connection for every command of every
guard (`BlockingConnectionPool` of one: commands wait their turn rather than open
more). Its thread applies announcements to the guards' views, re-reads the keys of the
guards that are due and writes their heartbeats, a batch per round trip.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from escbot_agent.connection import client_options

from .payloads import describe
from .shared_view import SUBSCRIBE_CHUNK, JoinBatch, Seat, SharedView

log = logging.getLogger("escbot_agent")

_monotonic = time.monotonic
RETRY_MAX = 1.0  # seconds between reconnection attempts, at most
TICK = 0.02  # the longest the thread waits before it looks at joins, leaves and schedules
SLACK = 0.05  # guards due this close together share a round trip


def process_name() -> str:
    """The name of a process's connections in `CLIENT LIST`."""
    host = "".join("_" if ch.isspace() else ch for ch in socket.gethostname())
    return f"escbot-agent:{host}:{os.getpid()}"


def pool_wait(timeout: float) -> float:
    """How long a command waits for the process's one connection."""
    return max(10.0, 5 * timeout)


@dataclass
class _Batch:
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class BeatWriter:
    """Heartbeats written as a group: whoever comes first writes every heartbeat asked for
    meanwhile, in one MULTI round trip, and the others wait for it (a fleet killed at once
    writes its `killed` states in a few round trips, not one each)."""

    def __init__(self, client: redis.Redis, wait: float) -> None:
        self._client = client
        self._wait = wait
        self._lock = threading.Lock()
        self._pending: dict[Seat, bool] = {}
        self._batch = _Batch()
        self._writing = False

    def write(self, entries: Sequence[tuple[Seat, bool]]) -> None:
        """Write (seat, ended) heartbeats; raises the RedisError of their round trip."""
        with self._lock:
            for seat, ended in entries:
                self._pending[seat] = self._pending.get(seat, False) or ended
            mine = self._batch
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.done.wait(self._wait)
            if mine.error is not None:
                raise mine.error
            return
        while True:
            with self._lock:
                taken = list(self._pending.items())
                self._pending.clear()
                batch, self._batch = self._batch, _Batch()
                if not taken:
                    self._writing = False
                    break
            try:
                pipe = self._client.pipeline(transaction=True)
                SharedView.queue_beats(pipe, taken, time.time())
                SharedView.beats_answered(taken, pipe.execute(raise_on_error=False))
            except redis.RedisError as exc:
                batch.error = exc
            batch.done.set()
        if mine.error is not None:
            raise mine.error


class SharedSubscriber:
    """One process's subscriber for `TaskGuard`s; see the module."""

    def __init__(self, client: redis.Redis, listener: redis.Redis, owns_client: bool) -> None:
        self.client = client
        self._listener = listener  # its own pool: no retry, a lost connection is rebuilt
        self._owns_client = owns_client
        self.view = SharedView()
        self.beats = BeatWriter(client, pool_wait(_timeout_of(client)))
        self._requests: deque[tuple[str, Seat, str]] = deque()
        self._stop = threading.Event()
        self._pubsub: Any = None
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="escbot-guards", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ from the guards

    def join(self, seat: Seat) -> None:
        self._requests.append(("join", seat, ""))

    def leave(self, seat: Seat) -> None:
        seat.left = True
        self._requests.append(("leave", seat, ""))

    def watch(self, seat: Seat, key: str) -> None:
        self._requests.append(("watch", seat, key))

    def unwatch(self, seat: Seat, key: str) -> None:
        self._requests.append(("unwatch", seat, key))

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._connect()
                self._serve()
            except Exception as exc:
                self._drop_pubsub()
                if self._stop.is_set():
                    break
                self._failures += 1
                if self._failures == 1:
                    continue  # a dropped connection is not an outage: reconnect at once
                if not isinstance(exc, redis.RedisError | OSError):
                    log.exception("agent guards: unexpected error")
                self.view.unreachable(describe(exc), _monotonic())
                self._stop.wait(min(RETRY_MAX, 0.05 * 2 ** (self._failures - 2)))
        self._drop_pubsub()
        with contextlib.suppress(Exception):
            self._listener.connection_pool.disconnect()
        if self._owns_client:
            with contextlib.suppress(Exception):
                self.client.connection_pool.disconnect()

    def _connect(self) -> None:
        self._pubsub = self._listener.pubsub()  # type: ignore[no-untyped-call]  # unannotated
        channels, _batch, polled = self.view.rejoin()
        self._subscribe(channels)
        if polled:
            self._first_read(polled)

    def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _serve(self) -> None:
        view = self.view
        while not self._stop.is_set():
            self._take_requests()
            now = _monotonic()
            syncs, beats = view.due(now, SLACK)
            if syncs:
                self._reread(syncs)
            if beats:
                self._beat(beats)
            wait = max(0.0, min(TICK, view.next_due() - _monotonic()))
            message = self._pubsub.get_message(timeout=wait)
            while message is not None:
                self._on_message(message)
                message = self._pubsub.get_message(timeout=0)

    def _take_requests(self) -> None:
        joining: list[Seat] = []
        gone: list[str] = []
        while self._requests:
            what, seat, key = self._requests.popleft()
            if what == "join":
                if not seat.left:
                    joining.append(seat)
            elif what == "leave":
                if seat in joining:
                    joining.remove(seat)
                gone.extend(self.view.remove(seat))
            elif what == "watch":
                channel = self.view.watch(seat, key)
                if channel is not None:
                    self._marker()
                    self._subscribe([channel])
            else:
                channel = self.view.unwatch(seat, key)
                if channel is not None:
                    gone.append(channel)
        if gone and self._pubsub is not None:
            self._pubsub.unsubscribe(*gone)
        if joining:
            channels, _batch, polled = self.view.admit(joining)
            self._subscribe(channels)
            if polled:
                self._first_read(polled)

    def _marker(self) -> None:
        """A subscription of no guard's (a decision waited on): counted in line."""
        self.view.awaiting.append(JoinBatch([], 1))

    def _subscribe(self, channels: list[str]) -> None:
        for start in range(0, len(channels), SUBSCRIBE_CHUNK):
            self._pubsub.subscribe(*channels[start : start + SUBSCRIBE_CHUNK])

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":
            batch = self.view.confirmed()
            if batch is not None and batch.seats:
                self._first_read(batch.seats)
        elif kind == "message":
            self.view.announce(message["channel"], message["data"])

    def _first_read(self, seats: list[Seat]) -> None:
        """Read the guards that just (re)joined, write their heartbeats, let them start."""
        seats = [seat for seat in seats if not seat.left]
        if not seats:
            return
        self._reread(seats, first=True)
        self._beat([seat for seat in seats if seat.heartbeat is not None], first=True)
        for seat in seats:
            seat.started()

    def _reread(self, seats: list[Seat], *, first: bool = False) -> None:
        pipe = self.client.pipeline(transaction=False)
        plan = self.view.queue_reread(pipe, seats)
        replies = pipe.execute()
        now = _monotonic()
        self.view.apply_reread(plan, replies, now, reconnected=first)
        for seat in seats:
            self.view.schedule(seat, now, first=first)
        self._failures = 0

    def _beat(self, seats: list[Seat], *, first: bool = False) -> None:
        if not seats:
            return
        self.beats.write([(seat, False) for seat in seats])
        now = _monotonic()
        for seat in seats:
            self.view.schedule_beat(seat, now, first=first)


def _timeout_of(client: redis.Redis) -> float:
    value = client.connection_pool.connection_kwargs.get("socket_timeout")
    return float(value) if value else 2.0


# ---------------------------------------------------------------------- one per process


_registry_lock = threading.Lock()
_registry: dict[tuple[Any, ...], tuple[SharedSubscriber, int]] = {}


def acquire(url: str, timeout: float, client: redis.Redis | None) -> SharedSubscriber:
    """The process's subscriber for this Redis (made on first use), counted once more."""
    key: tuple[Any, ...] = ("client", id(client)) if client is not None else ("url", url, timeout)
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = (_make(url, timeout, client), 0)
        hub, count = found
        _registry[key] = (hub, count + 1)
        return hub


def release(hub: SharedSubscriber) -> None:
    """A guard is done with it; the last one stops it."""
    with _registry_lock:
        for key, (held, count) in list(_registry.items()):
            if held is hub:
                if count > 1:
                    _registry[key] = (held, count - 1)
                else:
                    del _registry[key]
                    hub.stop()
                return


def _make(url: str, timeout: float, client: redis.Redis | None) -> SharedSubscriber:
    name = process_name()
    if client is None:
        options = client_options(timeout, name)
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=1, timeout=pool_wait(timeout), **options
        )
        commands = redis.Redis(connection_pool=pool)
        listener_pool = redis.ConnectionPool.from_url(
            url, **client_options(timeout, name, retry=Retry(NoBackoff(), 0))
        )
    else:
        commands = client
        given = client.connection_pool
        listener_pool = redis.ConnectionPool(
            connection_class=given.connection_class,
            **{**given.connection_kwargs, "retry": Retry(NoBackoff(), 0)},
        )
    return SharedSubscriber(commands, redis.Redis(connection_pool=listener_pool), client is None)
