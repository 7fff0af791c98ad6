"""The asyncio shared subscriber: one per event loop (per Redis), whatever the number of
`AsyncTaskGuard`s. One task and two connections, as `shared.SharedSubscriber` for
threads: a subscription to the announcement channels of the keys its guards obey, and
one connection for every command of every guard. A kill it learns of cancels the
protected blocks of the guards it reaches at once, and their `killed` heartbeats are
written together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from escbot_agent.connection import client_options

from .payloads import describe
from .shared import RETRY_MAX, SLACK, TICK, pool_wait, process_name
from .shared_view import SUBSCRIBE_CHUNK, JoinBatch, Seat, SharedView

log = logging.getLogger("escbot_agent")

_monotonic = time.monotonic


class AsyncBeatWriter:
    """As `shared.BeatWriter`: the first to ask writes what everyone asked meanwhile."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: dict[Seat, bool] = {}
        self._batch: asyncio.Future[BaseException | None] | None = None
        self._writing = False

    async def write(self, entries: Sequence[tuple[Seat, bool]]) -> None:
        """Write (seat, ended) heartbeats; raises the RedisError of their round trip."""
        for seat, ended in entries:
            self._pending[seat] = self._pending.get(seat, False) or ended
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        mine = self._batch
        if not self._writing:
            self._writing = True
            batch = None
            try:
                while self._pending:
                    taken = list(self._pending.items())
                    self._pending.clear()
                    batch, self._batch = self._batch, None
                    error: BaseException | None = None
                    try:
                        pipe = self._client.pipeline(transaction=True)
                        SharedView.queue_beats(pipe, taken, time.time())
                        replies = await pipe.execute(raise_on_error=False)
                        SharedView.beats_answered(taken, replies)
                    except redis.RedisError as exc:
                        error = exc
                    if batch is not None:
                        batch.set_result(error)
            finally:
                self._writing = False
                for left in (batch, self._batch):  # cancelled: nobody waits for ever
                    if left is not None and not left.done():
                        left.set_result(None)
        error = await asyncio.shield(mine)
        if error is not None:
            raise error


class AsyncSharedSubscriber:
    """One event loop's subscriber for `AsyncTaskGuard`s; see the module."""

    def __init__(self, client: aioredis.Redis, listener: aioredis.Redis, owns_client: bool) -> None:
        self.client = client
        self._listener = listener
        self._owns_client = owns_client
        self.view = SharedView()
        self.beats = AsyncBeatWriter(client)
        self._requests: deque[tuple[str, Seat, str]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._pubsub: Any = None
        self._failures = 0
        self._task = asyncio.create_task(self._run(), name="escbot-guards")

    # ------------------------------------------------------------------ from the guards

    def join(self, seat: Seat) -> None:
        self._requests.append(("join", seat, ""))
        self._wake.set()

    def leave(self, seat: Seat) -> None:
        seat.left = True
        self._requests.append(("leave", seat, ""))

    def watch(self, seat: Seat, key: str) -> None:
        self._requests.append(("watch", seat, key))
        self._wake.set()

    def unwatch(self, seat: Seat, key: str) -> None:
        self._requests.append(("unwatch", seat, key))

    def owe_beat(self, seat: Seat) -> None:
        self.view.owed.add(seat)
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        while not task.done():  # as aio_reader.stop: a cancellation can be swallowed
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        await self._drop_pubsub()
        with contextlib.suppress(Exception):
            await self._listener.connection_pool.disconnect()
        if self._owns_client:
            with contextlib.suppress(Exception):
                await self.client.connection_pool.disconnect()

    # ------------------------------------------------------------------ the task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._connect()
                await self._serve()
            except Exception as exc:
                await self._drop_pubsub()
                self._failures += 1
                if self._failures == 1:
                    continue  # a dropped connection is not an outage: reconnect at once
                if not isinstance(exc, redis.RedisError | OSError):
                    log.exception("agent guards: unexpected error")
                self.view.unreachable(describe(exc), _monotonic())
                await asyncio.sleep(min(RETRY_MAX, 0.05 * 2 ** (self._failures - 2)))

    async def _connect(self) -> None:
        self._pubsub = self._listener.pubsub()
        channels, _batch, polled = self.view.rejoin()
        await self._subscribe(channels)
        if polled:
            await self._first_read(polled)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _serve(self) -> None:
        view = self.view
        while True:
            await self._take_requests()
            now = _monotonic()
            syncs, beats = view.due(now, SLACK)
            if syncs:
                await self._reread(syncs)
            if beats:
                await self._beat(beats)
            if self._requests or view.owed:
                continue
            wait = max(0.0, min(TICK, view.next_due() - _monotonic()))
            self._wake.clear()
            if self._pubsub.connection is None:  # nothing subscribed yet
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            message = await self._pubsub.get_message(timeout=wait)
            ready: list[Seat] = []
            while message is not None:
                ready.extend(self._on_message(message))
                message = await self._pubsub.get_message(timeout=0)
            if ready:
                await self._first_read(ready)

    async def _take_requests(self) -> None:
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
                    self.view.awaiting.append(JoinBatch([], 1))
                    await self._subscribe([channel])
            else:
                channel = self.view.unwatch(seat, key)
                if channel is not None:
                    gone.append(channel)
        if gone and self._pubsub is not None and self._pubsub.connection is not None:
            await self._pubsub.unsubscribe(*gone)
        if joining:
            channels, _batch, polled = self.view.admit(joining)
            await self._subscribe(channels)
            if polled:
                await self._first_read(polled)

    async def _subscribe(self, channels: list[str]) -> None:
        for start in range(0, len(channels), SUBSCRIBE_CHUNK):
            await self._pubsub.subscribe(*channels[start : start + SUBSCRIBE_CHUNK])

    def _on_message(self, message: dict[str, Any]) -> list[Seat]:
        """Apply one message; the guards whose subscriptions it completed."""
        kind = message["type"]
        if kind == "subscribe":
            batch = self.view.confirmed()
            if batch is not None:
                return batch.seats
        elif kind == "message":
            self.view.announce(message["channel"], message["data"])
        return []

    async def _first_read(self, seats: list[Seat]) -> None:
        seats = [seat for seat in seats if not seat.left]
        if not seats:
            return
        await self._reread(seats, first=True)
        await self._beat([seat for seat in seats if seat.heartbeat is not None], first=True)
        for seat in seats:
            seat.started()

    async def _reread(self, seats: list[Seat], *, first: bool = False) -> None:
        pipe = self.client.pipeline(transaction=False)
        plan = self.view.queue_reread(pipe, seats)
        replies = await pipe.execute()
        now = _monotonic()
        self.view.apply_reread(plan, replies, now, reconnected=first)
        for seat in seats:
            self.view.schedule(seat, now, first=first)
        self._failures = 0

    async def _beat(self, seats: list[Seat], *, first: bool = False) -> None:
        if not seats:
            return
        await self.beats.write([(seat, False) for seat in seats])
        now = _monotonic()
        for seat in seats:
            if seat.heartbeat is not None:
                self.view.schedule_beat(seat, now, first=first)


# ---------------------------------------------------------------------- one per loop


_registry: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], tuple[AsyncSharedSubscriber, int]]
] = weakref.WeakKeyDictionary()


def acquire(url: str, timeout: float, client: aioredis.Redis | None) -> AsyncSharedSubscriber:
    """This event loop's subscriber for this Redis (made on first use), counted once more."""
    hubs = _registry.setdefault(asyncio.get_running_loop(), {})
    key: tuple[Any, ...] = ("client", id(client)) if client is not None else ("url", url, timeout)
    hub, count = hubs.get(key) or (_make(url, timeout, client), 0)
    hubs[key] = (hub, count + 1)
    return hub


async def release(hub: AsyncSharedSubscriber) -> None:
    hubs = _registry.get(asyncio.get_running_loop(), {})
    for key, (held, count) in list(hubs.items()):
        if held is hub:
            if count > 1:
                hubs[key] = (held, count - 1)
            else:
                del hubs[key]
                await hub.stop()
            return


def _make(url: str, timeout: float, client: aioredis.Redis | None) -> AsyncSharedSubscriber:
    name = process_name()
    if client is None:
        options = client_options(timeout, name, retry=Retry(NoBackoff(), 1))
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=1, timeout=pool_wait(timeout), **options
        )
        commands = aioredis.Redis(connection_pool=pool)
        listener_pool = aioredis.ConnectionPool.from_url(
            url, **client_options(timeout, name, retry=Retry(NoBackoff(), 0))
        )
    else:
        commands = client
        given = client.connection_pool
        listener_pool = aioredis.ConnectionPool(
            connection_class=given.connection_class,
            **{**given.connection_kwargs, "retry": Retry(NoBackoff(), 0)},
        )
    return AsyncSharedSubscriber(
        commands, aioredis.Redis(connection_pool=listener_pool), client is None
    )
