"""Trigger windows in Redis: each signal added to its triggers' sliding windows, the
windows compared with their thresholds, and the stream entries acknowledged, in one Lua
script, atomically. So a replica that dies mid-batch leaves its entries unacknowledged
and unapplied (they are read again, and counted once), and a trigger whose window holds
is claimed by exactly one replica (`SET … NX` of its `fired` key).

A window is a hash of time buckets (a window slides in steps of 1/30 of its length);
`fired` holds `pending|<ms>|<value>|<payload>` until the firing is recorded in the
database, then `done|<firing id>`; the set `triggers:pending` lists the pending ones, so
a firing whose recording was interrupted is retried.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import redis

from bot.control import ControlPlaneError, describe_redis_error
from bot.keys import KeyNames
from bot.policy.triggers import BUCKETS, Trigger

_APPLY = """
local group = ARGV[1]
local now = tonumber(ARGV[2])
local n_ack = tonumber(ARGV[3])
local results = {}
local a = 4 + n_ack
local k = 3
while a <= #ARGV do
  local mode, bucket_ms, n = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local value, cmp, threshold = tonumber(ARGV[a + 3]), ARGV[a + 4], tonumber(ARGV[a + 5])
  local member, payload = ARGV[a + 6], ARGV[a + 7]
  local window, fired = KEYS[k], KEYS[k + 1]
  local v = value
  if mode ~= 'value' then
    local bucket = math.floor(now / bucket_ms)
    redis.call('HINCRBYFLOAT', window, bucket, value)
    redis.call('PEXPIRE', window, bucket_ms * (n + 1))
    local fields = redis.call('HGETALL', window)
    v = 0
    for i = 1, #fields, 2 do
      if tonumber(fields[i]) <= bucket - n then
        redis.call('HDEL', window, fields[i])
      else
        v = v + tonumber(fields[i + 1])
      end
    end
  end
  local holds = (cmp == 'above' and v > threshold) or (cmp == 'at_least' and v >= threshold)
    or (cmp == 'below' and v < threshold)
  if holds then
    local shown = string.format('%.17g', v)
    if redis.call('SET', fired, 'pending|' .. now .. '|' .. shown .. '|' .. payload, 'NX') then
      redis.call('SADD', KEYS[2], member)
      table.insert(results, member)
      table.insert(results, shown)
    end
  end
  a = a + 8
  k = k + 2
end
if n_ack > 0 then
  redis.call('XACK', KEYS[1], group, unpack(ARGV, 4, 3 + n_ack))
end
return results
"""


@dataclass(frozen=True)
class Observation:
    """One signal for one trigger: what its window is fed with, and who it is about."""

    trigger: Trigger
    subject: str  # the task id, or `agent:{agent}`
    task_id: str
    agent: str
    value: float
    detail: str


@dataclass(frozen=True)
class Fired:
    trigger: str
    subject: str
    task_id: str
    agent: str
    value: float
    detail: str


def member_of(trigger: str, subject: str) -> str:
    return f"{trigger}|{subject}"


def combined(observations: Sequence[Observation]) -> list[Observation]:
    """A batch's observations, one per trigger and subject: summed (a sum), counted (a
    count), or the one value that decides a single-value trigger (the largest for above
    and at_least, the smallest for below). The window and its verdict come out the same
    as signal by signal, for a fraction of the work."""
    found: dict[tuple[str, str], Observation] = {}
    for seen in observations:
        key = (seen.trigger.name, seen.subject)
        before = found.get(key)
        if before is None:
            value = 1.0 if seen.trigger.mode == "count" else seen.value
            found[key] = replace(seen, value=value)
            continue
        mode = seen.trigger.mode
        if mode == "sum":
            value = before.value + seen.value
        elif mode == "count":
            value = before.value + 1
        elif seen.trigger.comparator == "below":
            value = min(before.value, seen.value)
        else:
            value = max(before.value, seen.value)
        found[key] = replace(seen, value=value)
    return list(found.values())


def _payload(observation: Observation) -> str:
    return json.dumps(
        {"task_id": observation.task_id, "agent": observation.agent, "detail": observation.detail},
        separators=(",", ":"),
    )


def parse_marker(trigger: str, subject: str, marker: str) -> tuple[int, Fired] | None:
    """A `pending` marker: when it was set (ms) and the firing it stands for."""
    state, _, rest = marker.partition("|")
    if state != "pending":
        return None
    at, _, rest = rest.partition("|")
    value, _, payload = rest.partition("|")
    try:
        data = json.loads(payload)
        fired = Fired(
            trigger=trigger,
            subject=subject,
            task_id=str(data["task_id"]),
            agent=str(data["agent"]),
            value=float(value),
            detail=str(data.get("detail", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return int(at), fired


class SignalWindows:
    def __init__(self, client: redis.Redis, keys: KeyNames) -> None:
        self.client = client
        self.keys = keys
        self._script = client.register_script(_APPLY)

    def apply(
        self,
        stream: str,
        group: str,
        observations: Sequence[Observation],
        ack: Sequence[str],
        now: datetime,
    ) -> list[Fired]:
        """Feed the windows, acknowledge `ack`, and return the triggers that fired now."""
        now_ms = int(now.timestamp() * 1000)
        keys: list[Any] = [stream, self.keys.triggers_pending]
        args: list[Any] = [group, now_ms, len(ack), *ack]
        by_member: dict[str, Observation] = {}
        for observation in combined(observations):
            trigger = observation.trigger
            window = trigger.window
            window_ms = int(window.total_seconds() * 1000) if window is not None else 0
            member = member_of(trigger.name, observation.subject)
            by_member[member] = observation
            keys += [
                self.keys.trigger_window(trigger.name, observation.subject),
                self.keys.trigger_fired(trigger.name, observation.subject),
            ]
            args += [
                trigger.mode,
                max(1, window_ms // BUCKETS),
                BUCKETS,
                repr(observation.value),
                trigger.comparator,
                repr(trigger.threshold),
                member,
                _payload(observation),
            ]
        try:
            reply = self._script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc
        fired = []
        for member, value in zip(reply[::2], reply[1::2], strict=True):
            seen = by_member[member]
            fired.append(
                Fired(
                    seen.trigger.name,
                    seen.subject,
                    seen.task_id,
                    seen.agent,
                    float(value),
                    seen.detail,
                )
            )
        return fired

    def pending(self) -> list[tuple[int, Fired]]:
        """Firings claimed in Redis whose recording has not been confirmed."""
        try:
            members = sorted(self.client.smembers(self.keys.triggers_pending))
            if not members:
                return []
            split = [str(member).split("|", 1) for member in members]
            markers = self.client.mget(
                [self.keys.trigger_fired(name, subject) for name, subject in split]
            )
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc
        found = []
        for (name, subject), marker in zip(split, markers, strict=True):
            parsed = parse_marker(name, subject, str(marker)) if marker else None
            if parsed is not None:
                found.append(parsed)
        return found
