"""The Redis control plane (CONTRACTS §2): the projection of desired state that agents read.

This module writes what it is told; it decides nothing. Every change is followed, in
the same round trip, by a PUBLISH of the changed key's name on `control` (the contract's
wake-up hint, for agents in any language) and one of what changed on that key's own
channel, `control:{key}` (docs/protocol.md): the guards of the SDK subscribe to the
channels of their tasks' keys only, and take the value from the message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from escbot_agent.connection import client_options as client_options
from escbot_agent.connection import connect as connect
from redis.typing import EncodableT, FieldT

from bot.keys import KeyNames

EffectKind = Literal["kill", "pause", "decision", "inbox", "trigger", "redaction", "outcome"]
DECISION_TTL_SECONDS = 7 * 24 * 3600
OUTCOME_MARKER_TTL_SECONDS = 30 * 24 * 3600  # how long a replay is recognised as one
REDACTION_TTL_SECONDS = 24 * 3600  # an escalation's placeholders, after its decision
INBOX_MAXLEN = 10_000
OUTCOMES_MAXLEN = 100_000

# An `outcomes` entry exactly once: the marker (the effect's own id) is claimed with
# SET NX, and only the claim's winner appends, in one script; so a replay of the same
# effect (Redis answered too late, reconcile ran twice) adds nothing.
_APPEND_OUTCOME = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""


class ControlPlaneError(Exception):
    """Redis could not be written; the message says why."""


@dataclass(frozen=True)
class Effect:
    """One change to the control plane: set or delete a key, or append to an inbox."""

    kind: EffectKind
    target: str
    op: Literal["set", "delete", "append", "expire"]
    value: dict[str, Any] | None = field(default=None, compare=False)
    # Seconds the key lives; None: a decision's full DECISION_TTL_SECONDS, others forever.
    # A decision written back later gets what is left of its life, which runs from the
    # decision, not from the write.
    ttl: int | None = field(default=None, compare=False)

    @property
    def expiry(self) -> int | None:
        if self.ttl is not None:
            return self.ttl
        return DECISION_TTL_SECONDS if self.kind == "decision" else None


def _json(value: dict[str, Any] | None) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def announcement(key: str, effect: Effect) -> str:
    """The message on `control:{key}`: `{"key", "op": "set" | "delete" | "append",
    "value"}`, the value as written (null for a delete or a stream entry)."""
    op = "append" if effect.op == "append" else effect.op
    value = effect.value if effect.op == "set" else None
    return _json({"key": key, "op": op, "value": value})


class ControlPlane:
    def __init__(self, client: redis.Redis, keys: KeyNames) -> None:
        self.client = client
        self.keys = keys
        self._append_outcome = client.register_script(_APPEND_OUTCOME)

    def key_of(self, effect: Effect) -> str:
        if effect.kind == "kill":
            return self.keys.kill_all if effect.target == "all" else self.keys.kill(effect.target)
        if effect.kind == "pause":
            return self.keys.pause(effect.target)
        if effect.kind == "decision":
            return self.keys.decision(effect.target)
        if effect.kind == "redaction":
            return self.keys.redaction(effect.target)
        if effect.kind == "outcome":
            return self.keys.outcomes
        if effect.kind == "trigger":
            trigger, _, subject = effect.target.partition("|")
            return self.keys.trigger_fired(trigger, subject)
        return self.keys.inbox(effect.target)

    def _trigger(self, pipe: Any, effect: Effect) -> None:
        """A trigger's own keys (target `name|subject`): its firing recorded (`set`), or
        released (`delete`: it may fire again, from an empty window)."""
        trigger, _, subject = effect.target.partition("|")
        fired = self.keys.trigger_fired(trigger, subject)
        if effect.op == "set":
            pipe.set(fired, f"done|{(effect.value or {}).get('firing', '')}")
        else:
            pipe.delete(fired, self.keys.trigger_window(trigger, subject))
        pipe.srem(self.keys.triggers_pending, effect.target)

    def _outcome(self, pipe: Any, effect: Effect) -> None:
        """An `outcomes` entry (target: the entry's own id, its marker), at most once."""
        flat: list[EncodableT] = []
        for name, value in (effect.value or {}).items():
            flat += [name, "" if value is None else value]
        self._append_outcome(
            keys=[self.keys.outcome_marker(effect.target), self.keys.outcomes],
            args=[OUTCOME_MARKER_TTL_SECONDS, OUTCOMES_MAXLEN, *flat],
            client=pipe,
        )

    def apply(self, effects: Sequence[Effect]) -> list[str]:
        """Write the effects and announce each changed key, in one round trip."""
        if not effects:
            return []
        pipe = self.client.pipeline(transaction=False)
        changed = []
        announced: list[tuple[str, Effect]] = []
        for effect in effects:
            if effect.kind == "trigger":
                self._trigger(pipe, effect)  # the bot's own keys: nothing to announce
                continue
            key = self.key_of(effect)
            if effect.op == "expire":  # a redaction map's last day: agents are not told
                pipe.expire(key, effect.expiry or REDACTION_TTL_SECONDS)
                continue
            if effect.kind == "outcome":
                self._outcome(pipe, effect)
            elif effect.op == "set":
                pipe.set(key, _json(effect.value), ex=effect.expiry)
            elif effect.op == "delete":
                pipe.delete(key)
            else:
                fields: dict[FieldT, EncodableT] = {k: v for k, v in (effect.value or {}).items()}
                pipe.xadd(key, fields, maxlen=INBOX_MAXLEN, approximate=True)
            changed.append(key)
            announced.append((key, effect))
        self._announce(pipe, announced)
        self._execute(pipe)
        return changed

    def ensure(self, effects: Sequence[Effect]) -> list[str]:
        """Set each key only where it is missing; announce and return the keys restored."""
        return self.ensure_and_count(effects, ())[0]

    def ensure_and_count(
        self, effects: Sequence[Effect], present: Sequence[str], *, chunk: int = 1000
    ) -> tuple[list[str], int]:
        """`ensure(effects)`, and how many of the keys `present` exist, in one round trip:
        checking keys costs far less than writing their values, so callers check first
        and write only when something is missing."""
        if not effects and not present:
            return [], 0
        pipe = self.client.pipeline(transaction=False)
        keys = [self.key_of(effect) for effect in effects]
        for key, effect in zip(keys, effects, strict=True):
            pipe.set(key, _json(effect.value), nx=True, ex=effect.expiry)
        for start in range(0, len(present), chunk):
            pipe.exists(*present[start : start + chunk])
        results = self._execute(pipe)
        found = sum(results[len(keys) :])
        restored = [key for key, created in zip(keys, results[: len(keys)], strict=True) if created]
        if restored:
            announce = self.client.pipeline(transaction=False)
            by_key = dict(zip(keys, effects, strict=True))
            self._announce(announce, [(key, by_key[key]) for key in restored])
            self._execute(announce)
        return restored, found

    def _announce(self, pipe: Any, changes: Sequence[tuple[str, Effect]]) -> None:
        """`control` gets each key's name; `control:{key}` what changed on it."""
        for key, _ in changes:
            pipe.publish(self.keys.control, key)
        for key, effect in changes:
            name = key.removeprefix(self.keys.prefix)
            pipe.publish(self.keys.announcements(name), announcement(name, effect))

    def save_placeholders(
        self, escalation_id: str, placeholders: dict[str, str], ttl: int | None = None
    ) -> None:
        """An escalation's placeholders and what they replaced; a placeholder already
        saved keeps its value (a retried intake gives the same numbering)."""
        if not placeholders:
            return
        key = self.keys.redaction(escalation_id)
        pipe = self.client.pipeline(transaction=False)
        for placeholder, original in placeholders.items():
            pipe.hsetnx(key, placeholder, original)
        if ttl is not None:
            pipe.expire(key, ttl)
        self._execute(pipe)

    def placeholders(self, escalation_id: str) -> dict[str, str]:
        try:
            found = self.client.hgetall(self.keys.redaction(escalation_id))
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc
        return {str(k): str(v) for k, v in dict(found).items()}

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc

    def _execute(self, pipe: redis.client.Pipeline) -> list[Any]:
        try:
            return pipe.execute()
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc


def describe_redis_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
