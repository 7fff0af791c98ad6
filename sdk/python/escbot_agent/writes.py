"""What the sync guard writes (escalations, lines in the thread, outcomes, signals) and
the approval it waits for."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any, Unpack

import redis

from escbot_agent.contracts import Kind

from .errors import ControlPlaneUnreachable, TaskKilled
from .fleet import signal_fields
from .payloads import (
    ApprovalOutcome,
    EscalationOptions,
    FinishStatus,
    as_text,
    check_timeout,
    decision_unreadable,
    escalation_not_written,
    event_fields,
    event_not_written,
    expired_outcome,
    expiry_note,
    outcome_fields,
    parse_decision,
)
from .reader import ReaderThread

_monotonic = time.monotonic


class GuardWrites(ReaderThread):
    """TaskGuard's writes; see TaskGuard."""

    def escalate(
        self,
        reason: str,
        *,
        kind: Kind = "exception",
        action: str | None = None,
        args: Mapping[str, Any] | None = None,
        **options: Unpack[EscalationOptions],
    ) -> str:
        """Write an escalation to `escalations` and return its id (made here unless given:
        retrying with the same id stays one escalation). Does not wait."""
        fields, escalation_id = self._core.escalation(
            reason=reason, kind=kind, action=action, args=args, options=options
        )
        try:
            self._redis.xadd(self.keys.escalations, fields)
        except redis.RedisError as exc:
            raise escalation_not_written(escalation_id, exc) from exc
        return escalation_id

    def request_approval(
        self,
        action: str,
        args: Mapping[str, Any] | None = None,
        *,
        reason: str,
        timeout: float,
        **options: Unpack[EscalationOptions],
    ) -> ApprovalOutcome:
        """Escalate an action of kind `approval` and wait for `decision:{id}`.

        Returns the outcome: approved, rejected, redirected, terminated, or `expired` when
        no decision came within `timeout` seconds (never a rejection). An id whose decision
        already exists returns it at once (a restarted agent resumes). Raises TaskKilled
        if the task is killed while waiting. While Redis is unreachable it keeps trying
        until the timeout, except under `on_unreachable="raise"`.
        """
        check_timeout(timeout)
        fields, eid = self._core.escalation(
            reason=reason, kind="approval", action=action, args=args, options=options
        )
        decision_key = self.keys.decision(eid)
        deadline = _monotonic() + timeout
        woken = threading.Event()
        core = self._core
        with self._cond:
            self._waiters[eid] = woken
        self._watch(decision_key, on=True)
        written = waiting = False
        raw: object = None
        try:
            while True:
                woken.clear()
                try:
                    with self._cond:  # announced with its value: nothing to read
                        raw = self._decisions.pop(eid, None)
                    if raw is None:
                        raw = self._redis.get(decision_key)
                    if raw is not None:
                        break
                    with self._cond:  # a decision, even `terminated`, comes first
                        core.check_killed()
                    if not written:
                        self._redis.xadd(self.keys.escalations, fields)
                        written = True
                except redis.RedisError as exc:
                    if core.on_unreachable == "raise":
                        raise decision_unreadable(decision_key, eid, exc) from exc
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    break
                if not waiting:
                    waiting = True
                    self._report("waiting")
                woken.wait(min(remaining, core.reread_interval))
        except TaskKilled:
            self._report("killed")
            raise
        finally:
            with self._cond:
                self._waiters.pop(eid, None)
                self._decisions.pop(eid, None)
            self._watch(decision_key, on=False)
            if waiting:
                self._report("running", was=("waiting",))
        if raw is None:
            if written:
                with contextlib.suppress(ControlPlaneUnreachable):
                    self.say(expiry_note(timeout), eid)
            return expired_outcome(eid, timeout)
        outcome = parse_decision(eid, raw, args)
        with self._cond:
            core.note_outcome(outcome)
        return outcome

    def finish(
        self,
        status: FinishStatus = "completed",
        notice: str | None = None,
        *,
        task_type: str | None = None,
    ) -> str:
        """Tell the bot the task ended: `completed` (it may be sampled for review, per the
        policy's `reviews:`) or `failed`; `notice` is a sentence for the end user;
        `task_type` defaults to the guard's. Returns the `outcomes` entry id."""
        core = self._core
        fields = outcome_fields(
            self.task_id, core.agent, status, notice, task_type or core.task_type
        )
        try:
            return as_text(self._redis.xadd(self.keys.outcomes, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.outcomes, exc) from exc

    def say(self, text: str, escalation_id: str | None = None) -> str:
        """Write to `agent-events`: posted in the escalation's thread. Returns the entry id."""
        fields = event_fields(self.task_id, text, escalation_id)
        try:
            return as_text(self._redis.xadd(self.keys.agent_events, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.agent_events, exc) from exc

    def signal(self, name: str, value: float = 1, detail: str | None = None) -> str:
        """Report what the agent observed to `agent-signals`, for the bot's triggers: a
        name (`cost`, `failure`, `toxicity`, `out_of_scope`, `confidence`, ...), a number,
        a detail (at most 2000 characters). Returns the entry id."""
        fields = signal_fields(self.task_id, self._core.agent, name, value, detail)
        try:
            return as_text(self._redis.xadd(self.keys.signals, fields))
        except redis.RedisError as exc:
            raise event_not_written(self.keys.signals, exc) from exc
