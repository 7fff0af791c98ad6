"""The one view of the control plane that all guards of a process share, without I/O.

A process holds one subscriber (`shared.SharedSubscriber` for threads,
`aio_shared.AsyncSharedSubscriber` for asyncio) whatever the number of its guards. It
subscribes, for each key a guard obeys, to that key's own announcement channel,
`{prefix}control:{key}` (CONTRACTS §2 names the key; docs/protocol.md the channel), so an
announcement reaches only the processes that hold the task, and carries the new value, so
nobody re-reads on it. `kill:all` and the agent-wide keys are one subscription each,
however many guards obey them. The periodic re-read (the bound on a change written
without an announcement) and the heartbeats are batched: the guards due in the same
tick share one round trip.

`SharedView` is that bookkeeping: who listens to which key, which channels to
(un)subscribe, which guards are due, the commands of a batch and what their replies
mean. The drivers do the I/O and call it from their one thread (or task).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from escbot_agent.contracts import ControlValue
from escbot_agent.keys import KeyNames

from .core import GuardCore
from .fleet import DAY, Heartbeat
from .payloads import as_text, log, parse_control

MGET_CHUNK = 1000  # keys per MGET of a batched re-read
SUBSCRIBE_CHUNK = 500  # channels per SUBSCRIBE


@dataclass(eq=False, slots=True)
class Seat:
    """One guard, as the shared subscriber sees it. The callbacks run on the subscriber's
    thread (or task), under `lock`."""

    core: GuardCore
    push: bool
    heartbeat: Heartbeat | None
    lock: AbstractContextManager[Any]
    changed: Callable[[], None]  # the view of this guard changed
    decided: Callable[[str, str], None]  # (escalation id, decision JSON) announced
    started: Callable[[], None]  # first read done (or failed): start() returns
    beat_answered: Callable[[BaseException | None], None]
    next_sync: float = 0.0
    next_beat: float = float("inf")
    left: bool = False
    listening: tuple[str, ...] = ()
    watching: set[str] = field(default_factory=set)  # decision keys it waits on

    def listen_keys(self) -> tuple[str, ...]:
        core = self.core
        return (*core.control_keys, core.inbox_key)


@dataclass(eq=False, slots=True)
class JoinBatch:
    """Guards whose channels were just subscribed: read once every confirmation is in, so
    no announcement can slip between their first read and their subscription."""

    seats: list[Seat]
    expected: int
    confirmed: int = 0


@dataclass(slots=True)
class ReadPlan:
    seats: list[Seat]
    keys: list[str]
    seq: int
    full: bool


def _looks(core: GuardCore) -> tuple[object, ...]:
    """What a waiting checkpoint acts on: a re-read that changes none of it wakes nobody."""
    return (
        core.killed,
        core.killed_all,
        core.paused,
        core.killed_agent,
        core.paused_agent,
        core.reachable,
        core.inbox_dirty,
    )


def channel_of(keys: KeyNames, key: str) -> str:
    """`{prefix}control:{key}`: the announcement channel of one key (its name unprefixed)."""
    return keys.announcements(key.removeprefix(keys.prefix))


class SharedView:
    def __init__(self) -> None:
        self.seats: set[Seat] = set()
        self.listeners: dict[str, set[Seat]] = {}  # key → the guards that obey it
        self.channel_key: dict[str, str] = {}
        self.key_channel: dict[str, str] = {}
        self.awaiting: deque[JoinBatch] = deque()
        self.seq = 0  # announcements applied so far
        self.announced: dict[str, int] = {}  # key → seq of its last announcement
        self._syncs: list[tuple[float, int, Seat]] = []
        self._beats: list[tuple[float, int, Seat]] = []
        self._order = itertools.count()
        self.owed: set[Seat] = set()  # a state change the subscriber itself writes (asyncio kills)

    # ------------------------------------------------------------------ membership

    def admit(self, seats: Sequence[Seat]) -> tuple[list[str], JoinBatch | None, list[Seat]]:
        """New guards: the channels to subscribe, the batch to read once they are
        confirmed (push guards), and the guards to read at once (push=False)."""
        channels: list[str] = []
        pushed = [seat for seat in seats if seat.push]
        for seat in seats:
            self.seats.add(seat)
            if seat.push:
                seat.listening = seat.listen_keys()
                for key in seat.listening:
                    channel = self._listen(seat, key)
                    if channel is not None:
                        channels.append(channel)
        batch = None
        if pushed:
            if not channels:  # all subscribed already: one again marks when we are in line
                channels = [self.key_channel[pushed[0].listening[0]]]
            batch = JoinBatch(pushed, len(channels))
            self.awaiting.append(batch)
        return channels, batch, [seat for seat in seats if not seat.push]

    def _listen(self, seat: Seat, key: str) -> str | None:
        """Add a listener of `key`; its channel when nobody listened to it before."""
        listeners = self.listeners.get(key)
        if listeners is None:
            self.listeners[key] = {seat}
            channel = channel_of(seat.core.keys, key)
            self.channel_key[channel] = key
            self.key_channel[key] = channel
            return channel
        listeners.add(seat)
        return None

    def _unlisten(self, seat: Seat, key: str) -> str | None:
        listeners = self.listeners.get(key)
        if listeners is None:
            return None
        listeners.discard(seat)
        if listeners:
            return None
        del self.listeners[key]
        self.announced.pop(key, None)
        channel = self.key_channel.pop(key)
        del self.channel_key[channel]
        return channel

    def remove(self, seat: Seat) -> list[str]:
        """A guard closed: the channels nobody listens to any more."""
        seat.left = True
        self.seats.discard(seat)
        gone = [self._unlisten(seat, key) for key in (*seat.listening, *seat.watching)]
        seat.watching.clear()
        return [channel for channel in gone if channel is not None]

    def watch(self, seat: Seat, key: str) -> str | None:
        """A guard waits on `decision:{id}`: its channel, when new."""
        if seat.left or key in seat.watching:
            return None
        seat.watching.add(key)
        return self._listen(seat, key)

    def unwatch(self, seat: Seat, key: str) -> str | None:
        if key not in seat.watching:
            return None
        seat.watching.discard(key)
        return self._unlisten(seat, key)

    def confirmed(self) -> JoinBatch | None:
        """One subscription confirmed: the batch it completes, if any."""
        if not self.awaiting:
            return None
        head = self.awaiting[0]
        head.confirmed += 1
        if head.confirmed < head.expected:
            return None
        return self.awaiting.popleft()

    def rejoin(self) -> tuple[list[str], JoinBatch | None, list[Seat]]:
        """After a new connection: every channel again, every guard read again."""
        self.awaiting.clear()
        channels = list(self.channel_key)
        pushed = [seat for seat in self.seats if seat.push]
        batch = None
        if pushed and channels:
            batch = JoinBatch(pushed, len(channels))
            self.awaiting.append(batch)
        return channels, batch, [seat for seat in self.seats if not seat.push]

    # ------------------------------------------------------------------ announcements

    def announce(self, channel: object, data: object) -> list[Seat]:
        """An announcement: applied to every guard that obeys its key; the guards whose
        view changed. A message that does not carry a value (another publisher) makes
        them due for a re-read now."""
        key = self.channel_key.get(as_text(channel))
        if key is None:
            return []
        seats = list(self.listeners.get(key, ()))
        self.seq += 1
        self.announced[key] = self.seq
        try:
            message = json.loads(as_text(data))
            op = message["op"]
            value = message.get("value")
        except (ValueError, KeyError, TypeError):
            log.info("announcement on %s carries no value; re-reading", channel)
            for seat in seats:
                self.due_now(seat)
            return []
        raw = None if op == "delete" or value is None else json.dumps(value)
        parsed: list[ControlValue | None] = []  # parsed once, for every guard of the key
        for seat in seats:
            core = seat.core
            with seat.lock:
                if key in seat.watching:
                    if raw is not None:
                        seat.decided(key.removeprefix(core.keys.decision("")), raw)
                    continue
                if key == core.inbox_key:
                    core.inbox_changed()
                else:
                    if not parsed:
                        parsed.append(parse_control(key, raw))
                    core.apply_control(key, parsed[0])
                seat.changed()
        return seats

    # ------------------------------------------------------------------ schedules

    def schedule(self, seat: Seat, now: float, *, first: bool = False) -> None:
        """The guard's next re-read (and, on its first read, its next heartbeat), spread
        over the interval so that a fleet started at once does not re-read at once."""
        interval = seat.core.reread_interval
        seat.next_sync = now + (random.uniform(0.5, 1.0) if first else 1.0) * interval
        heapq.heappush(self._syncs, (seat.next_sync, next(self._order), seat))
        if first and seat.heartbeat is not None:
            self.schedule_beat(seat, now, first=True)

    def schedule_beat(self, seat: Seat, now: float, *, first: bool = False) -> None:
        assert seat.heartbeat is not None
        interval = seat.heartbeat.interval
        seat.next_beat = now + (random.uniform(0.5, 1.0) if first else 1.0) * interval
        heapq.heappush(self._beats, (seat.next_beat, next(self._order), seat))

    def due_now(self, seat: Seat) -> None:
        seat.next_sync = 0.0
        heapq.heappush(self._syncs, (0.0, next(self._order), seat))

    def due(self, now: float, slack: float) -> tuple[list[Seat], list[Seat]]:
        """The guards whose re-read and heartbeat are due (within `slack`, so that
        neighbours share the round trip), and those owed a heartbeat now."""
        return self._pop(self._syncs, now + slack, "next_sync"), self._due_beats(now + slack)

    def _due_beats(self, until: float) -> list[Seat]:
        beats = self._pop(self._beats, until, "next_beat")
        if self.owed:
            beats.extend(seat for seat in self.owed if seat not in beats and not seat.left)
            self.owed.clear()
        return beats

    @staticmethod
    def _pop(heap: list[tuple[float, int, Seat]], until: float, attribute: str) -> list[Seat]:
        seats: list[Seat] = []
        while heap and heap[0][0] <= until:
            due, _, seat = heapq.heappop(heap)
            if not seat.left and getattr(seat, attribute) == due and seat not in seats:
                seats.append(seat)
        return seats

    def next_due(self) -> float:
        heads = [heap[0][0] for heap in (self._syncs, self._beats) if heap]
        return min(heads, default=float("inf"))

    # ------------------------------------------------------------------ batched re-reads

    def queue_reread(self, pipe: Any, seats: Sequence[Seat], *, full: bool = True) -> ReadPlan:
        """One MGET of every distinct key the guards obey (`kill:all` and an agent's keys
        once), and each guard's newest inbox entry when `full`."""
        keys = list(dict.fromkeys(key for seat in seats for key in seat.core.control_keys))
        for start in range(0, len(keys), MGET_CHUNK):
            pipe.mget(keys[start : start + MGET_CHUNK])
        if full:
            for seat in seats:
                pipe.xrevrange(seat.core.inbox_key, count=1)
        return ReadPlan(list(seats), keys, self.seq, full)

    def apply_reread(
        self, plan: ReadPlan, replies: Sequence[Any], now: float, *, reconnected: bool = False
    ) -> None:
        chunks = (len(plan.keys) + MGET_CHUNK - 1) // MGET_CHUNK
        values = dict(zip(plan.keys, itertools.chain.from_iterable(replies[:chunks]), strict=True))
        tops: Iterable[Any] = replies[chunks:] if plan.full else itertools.repeat(None)
        for seat, top in zip(plan.seats, tops, strict=False):
            core = seat.core
            # A key announced while this read was on its way keeps the announced value.
            newer = frozenset(k for k in core.control_keys if self.announced.get(k, 0) > plan.seq)
            with seat.lock:
                before = _looks(core)
                if reconnected:
                    core.reconnected()
                if plan.full:
                    core.apply_inbox_top(top)
                core.apply_controls([values[k] for k in core.control_keys], now, keep=newer)
                if reconnected or _looks(core) != before:  # nobody is woken for nothing
                    seat.changed()

    def unreachable(self, error: str, now: float) -> None:
        for seat in list(self.seats):
            with seat.lock:
                seat.core.mark_unreachable(error, now)
                seat.changed()
            seat.started()

    # ------------------------------------------------------------------ batched heartbeats

    @staticmethod
    def queue_beats(pipe: Any, entries: Sequence[tuple[Seat, bool]], now: float) -> None:
        """The heartbeats of several guards on one MULTI pipeline: each hash with its TTL,
        then `tasks` (and `tasks:ended`) once per key prefix, trimmed to a day."""
        seen: dict[str, dict[str, float]] = {}
        ended: dict[str, dict[str, float]] = {}
        for seat, is_end in entries:
            beat = seat.heartbeat
            assert beat is not None
            core = seat.core
            pipe.hset(beat.key, mapping=beat.fields(core.activity, core.step_text()))
            pipe.pexpire(beat.key, beat.ttl_ms)
            seen.setdefault(beat.tasks_key, {})[beat.task_id] = now
            if is_end:
                ended.setdefault(beat.ended_key, {})[beat.task_id] = now
        cutoff = f"({now - DAY!r}"  # exclusive: older than a day
        for sets in (seen, ended):
            for key, members in sets.items():
                pipe.zadd(key, members)
                pipe.zremrangebyscore(key, "-inf", cutoff)

    @staticmethod
    def beats_answered(entries: Sequence[tuple[Seat, bool]], replies: Sequence[Any]) -> None:
        """Each guard learns whether its hash was written (a key of another type is not)."""
        for index, (seat, _) in enumerate(entries):
            reply = replies[2 * index] if 2 * index < len(replies) else None
            seat.beat_answered(reply if isinstance(reply, Exception) else None)
