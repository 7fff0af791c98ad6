"""What both guards share, without any I/O: the key names of one task, the local view of
its control keys (its own, its agent's, `kill:all`), what the agent is doing (the state
its heartbeat reports), the inbox bookkeeping (`InboxBook`: exactly once per consumer)
and the payloads an agent writes. `TaskGuard` (threads) and `AsyncTaskGuard` (asyncio)
drive it; only they touch Redis. Every method here runs under the guard's lock (or on its
event loop), except the label a checkpoint sets (`step`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from escbot_agent.contracts import ControlValue, Kind
from escbot_agent.ids import check_task_id
from escbot_agent.keys import KeyNames

from .errors import ControlPlaneUnreachable, PauseTimeout, TaskKilled
from .fleet import TaskState, check_task_type
from .inbox import InboxBook
from .payloads import (
    _OUTAGE,
    FAIL_MODES,
    EscalationOptions,
    FailMode,
    GuardState,
    StreamFields,
    Verdict,
    build_escalation,
    escalation_fields,
    log,
    parse_control,
)


class GuardCore(InboxBook):
    """One task's view of the control plane and its inbox bookkeeping. The guards feed it
    what they read (`apply_controls`, `apply_control`, `apply_inbox_top`, `inbox_read`) and
    ask it what a checkpoint must do (`hold`, `plan_inbox`); it never does I/O.

    Slots, because a checkpoint's fast path reads and writes a few of its attributes:
    slot access stays fast however many there are (an instance dict of this many keys
    is no longer a shared-key dict, and each access costs several nanoseconds more)."""

    __slots__ = (
        "_outage_since",
        "activity",
        "agent",
        "attempted",
        "consumer",
        "control_keys",
        "error",
        "fresh_until",
        "inbox_key",
        "keys",
        "kill_agent_key",
        "kill_all_key",
        "kill_key",
        "killed",
        "killed_agent",
        "killed_all",
        "on_unreachable",
        "pause_agent_key",
        "pause_key",
        "paused",
        "paused_agent",
        "quiet",
        "quiet_until",
        "reachable",
        "reread_interval",
        "stale_after",
        "step",
        "task_id",
        "task_type",
    )

    def __init__(
        self,
        task_id: str,
        *,
        prefix: str,
        agent: str,
        consumer: str | None,
        on_unreachable: FailMode,
        reread_interval: float,
        task_type: str | None = None,
    ) -> None:
        self.task_id = check_task_id(task_id)
        if on_unreachable not in FAIL_MODES:
            raise ValueError(f"on_unreachable must be one of {', '.join(FAIL_MODES)}")
        if not reread_interval > 0:
            raise ValueError("reread_interval must be a positive number of seconds")
        if not agent.strip() or len(agent) > 200:
            raise ValueError("agent must be a name of 1 to 200 characters")
        self.agent = agent
        self.task_type = check_task_type(task_type)
        self.consumer = consumer if consumer is not None else agent
        if not self.consumer.strip() or len(self.consumer) > 200:
            raise ValueError("consumer must be a name of 1 to 200 characters")
        self.on_unreachable: FailMode = on_unreachable
        self.reread_interval = reread_interval
        # The background re-reads every reread_interval; a view older than this means it
        # is stuck, and the guard treats the control plane as unreachable.
        self.stale_after = 2 * reread_interval + 5.0

        self.keys = KeyNames(prefix)
        self.kill_key = self.keys.kill(task_id)
        self.kill_all_key = self.keys.kill_all
        self.pause_key = self.keys.pause(task_id)
        self.kill_agent_key = self.keys.kill_agent(agent)
        self.pause_agent_key = self.keys.pause_agent(agent)
        self.inbox_key = self.keys.inbox(task_id)
        # One MGET reads them all, in this order (see apply_controls).
        self.control_keys = (
            self.kill_key,
            self.kill_all_key,
            self.pause_key,
            self.kill_agent_key,
            self.pause_agent_key,
        )

        self.killed: ControlValue | None = None
        self.killed_all: ControlValue | None = None
        self.paused: ControlValue | None = None
        self.killed_agent: ControlValue | None = None
        self.paused_agent: ControlValue | None = None
        # What the agent is doing, as its heartbeat reports it: changed by the code path
        # that changes it (a checkpoint holding, request_approval waiting, TaskKilled, close).
        self.activity: TaskState = "running"
        self.step: str | None = None  # the last label a checkpoint was given
        self.reachable = False
        self.attempted = False  # the first re-read has succeeded or failed
        self.error: str | None = None
        self.fresh_until = 0.0
        self.quiet = False  # nothing for a checkpoint to do: its fast path
        self.quiet_until = 0.0  # fresh_until while quiet: the fast path's one comparison
        self._outage_since: float | None = None
        self._init_inbox()

    def escalation(
        self,
        *,
        reason: str,
        kind: Kind,
        action: str | None,
        args: Mapping[str, Any] | None,
        options: EscalationOptions,
    ) -> tuple[StreamFields, str]:
        """The `escalations` stream fields of a new escalation of this task, and its id."""
        escalation, escalation_id = build_escalation(
            self.task_id,
            self.agent,
            reason=reason,
            kind=kind,
            action=action,
            args=args,
            options=options,
            task_type=self.task_type,
        )
        return escalation_fields(escalation), escalation_id

    # ------------------------------------------------------------------ the view

    def apply_controls(
        self, values: Sequence[object], now: float, keep: frozenset[str] = frozenset()
    ) -> None:
        """The values of `control_keys` (MGET): `kill:{task_id}`, `kill:all`,
        `pause:{task_id}`, `kill:agent:{agent}`, `pause:agent:{agent}`. The keys in `keep`
        were announced while the read was on its way: their announced value stands."""
        before = (self.killed, self.killed_all, self.paused, self.killed_agent, self.paused_agent)
        read = [
            was if key in keep else parse_control(key, value)
            for key, value, was in zip(self.control_keys, values, before, strict=True)
        ]
        self._log_changes(before, read)
        self.killed, self.killed_all, self.paused, self.killed_agent, self.paused_agent = read
        if self._outage_since is not None:
            log.warning(
                "control plane reachable again after %.1fs; task %s obeys its keys again",
                now - self._outage_since,
                self.task_id,
            )
            self._outage_since = None
        self.reachable = True
        self.attempted = True
        self.error = None
        self.fresh_until = now + self.stale_after
        self.refresh()

    def apply_control(self, key: str, value: ControlValue | None) -> None:
        """One key's value, as its announcement carried it."""
        before = [self.killed, self.killed_all, self.paused, self.killed_agent, self.paused_agent]
        read = list(before)
        read[self.control_keys.index(key)] = value
        self._log_changes(before, read)
        self.killed, self.killed_all, self.paused, self.killed_agent, self.paused_agent = read
        self.refresh()

    def _log_changes(
        self, before: Sequence[ControlValue | None], read: Sequence[ControlValue | None]
    ) -> None:
        for key, was, now_set in zip(self.control_keys, before, read, strict=True):
            if now_set is not None and was is None:
                log.info("%s is set by %s: %s", key, now_set.by, now_set.reason)
            elif now_set is None and was is not None:
                log.info("%s is lifted", key)

    @property
    def is_killed(self) -> bool:
        return (
            self.killed is not None or self.killed_agent is not None or self.killed_all is not None
        )

    @property
    def pause_in_force(self) -> ControlValue | None:
        """The task's own pause, else its agent's."""
        return self.paused or self.paused_agent

    def mark_unreachable(self, error: str, now: float) -> None:
        self.attempted = True
        self.reachable = False
        self.error = error
        if self._outage_since is None:
            self._outage_since = now
            template = "control plane unreachable (%s): " + _OUTAGE[self.on_unreachable]
            log.warning(template, error, self.task_id)
        self.refresh()

    def verdict(self, now: float) -> Verdict:
        if self.is_killed:
            return "killed"  # a kill seen before an outage stands through it
        if self.reachable and now >= self.fresh_until:
            self.mark_unreachable(f"no successful read for {self.stale_after:g}s", now)
        if not self.reachable:
            return "unreachable"
        return "paused" if self.pause_in_force is not None else "go"

    def hold(
        self, now: float, held_since: float, max_pause: float | None
    ) -> tuple[Literal["go", "go-blind", "wait"], float]:
        """One look at the view for a checkpoint that started waiting at `held_since`.

        Raises TaskKilled, PauseTimeout past `max_pause`, or ControlPlaneUnreachable under
        on_unreachable="raise". Returns "go", "go-blind" (unreachable under "continue": go
        on without reading the inbox), or "wait" and for how long at most.
        """
        verdict = self.verdict(now)
        if verdict == "killed":
            raise self.killed_error()
        if verdict == "go":
            return "go", 0.0
        if verdict == "unreachable" and self.on_unreachable == "raise":
            raise ControlPlaneUnreachable(self.unreachable_message())
        if verdict == "unreachable" and self.on_unreachable == "continue":
            return "go-blind", 0.0
        waited = now - held_since
        # Held at a pause: every change of the view wakes the checkpoint, so it need only
        # look again when the view would go stale; unreachable: at the next attempt.
        longest = (
            max(self.reread_interval, self.fresh_until - now)
            if verdict == "paused"
            else self.reread_interval
        )
        if max_pause is None:
            return "wait", longest
        if waited >= max_pause:
            pause = self.pause_in_force if verdict == "paused" else None
            raise PauseTimeout(self.task_id, waited, pause)
        return "wait", min(longest, max_pause - waited)

    def state(self, now: float) -> GuardState:
        if not self.attempted:
            return "starting"
        verdict = self.verdict(now)
        return "running" if verdict == "go" else verdict

    def holding_for(self) -> TaskState | None:
        """What a checkpoint told to wait is doing: held at a pause ("paused"), or None
        when the hold is the control plane being unreachable (nothing to report there)."""
        return "paused" if self.reachable and self.pause_in_force is not None else None

    def killed_error(self) -> TaskKilled:
        """The kill in force, the most specific first: the task's, its agent's, all."""
        if self.killed is not None:
            return TaskKilled(self.task_id, self.kill_key, self.killed, scope="task")
        if self.killed_agent is not None:
            return TaskKilled(
                self.task_id,
                self.kill_agent_key,
                self.killed_agent,
                scope="agent",
                agent=self.agent,
            )
        assert self.killed_all is not None
        return TaskKilled(self.task_id, self.kill_all_key, self.killed_all, scope="all")

    def check_killed(self) -> None:
        if self.is_killed:
            raise self.killed_error()

    def unreachable_message(self) -> str:
        return f"control plane unreachable for task {self.task_id}: {self.error or 'not read yet'}"

    def refresh(self) -> None:
        self.quiet = (
            self.reachable
            and not self.is_killed
            and self.pause_in_force is None
            and self.activity == "running"  # paused or killed before: say running again
            and self.inbox_idle
        )
        self.quiet_until = self.fresh_until if self.quiet else 0.0

    # ------------------------------------------------------------------ the heartbeat

    def set_activity(self, state: TaskState, *, was: tuple[TaskState, ...] | None = None) -> bool:
        """Record what the agent is doing now (only from one of `was`, when given); True
        when it changed. Nothing follows `finished`, and a guard closed after a kill stays
        `killed`."""
        current = self.activity
        if state == current or current == "finished" or (was is not None and current not in was):
            return False
        if state == "finished" and current == "killed":
            return False
        self.activity = state
        self.refresh()
        return True

    def step_text(self) -> str:
        """The heartbeat's `step`: the label the last labelled checkpoint was given."""
        return self.step or ""
