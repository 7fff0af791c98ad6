"""What both guards share, without any I/O: the key names of one task, the local view of
its control keys, the inbox bookkeeping (exactly once per consumer) and the payloads an
agent writes. `TaskGuard` (threads) and `AsyncTaskGuard` (asyncio) drive it; only they
touch Redis. Every method here runs under the guard's lock (or on its event loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from bot.contracts import (
    ControlValue,
    InboxEntry,
    Kind,
)
from bot.ids import check_task_id
from bot.keys import KeyNames

from .errors import ControlPlaneUnreachable, PauseTimeout, TaskKilled
from .payloads import (
    _OUTAGE,
    FAIL_MODES,
    INBOX_BATCH,
    ApprovalOutcome,
    EscalationOptions,
    FailMode,
    GuardState,
    InboxMessage,
    InboxPlan,
    StreamFields,
    Verdict,
    as_text,
    build_escalation,
    describe,
    escalation_fields,
    log,
    parse_control,
    stream_entries,
)


class GuardCore:
    """One task's view of the control plane and its inbox bookkeeping. The guards feed it
    what they read (`apply_controls`, `apply_inbox_top`, `on_message`, `inbox_read`) and
    ask it what a checkpoint must do (`hold`, `plan_inbox`); it never does I/O."""

    def __init__(
        self,
        task_id: str,
        *,
        prefix: str,
        agent: str,
        consumer: str | None,
        on_unreachable: FailMode,
        reread_interval: float,
    ) -> None:
        self.task_id = check_task_id(task_id)
        if on_unreachable not in FAIL_MODES:
            raise ValueError(f"on_unreachable must be one of {', '.join(FAIL_MODES)}")
        if not reread_interval > 0:
            raise ValueError("reread_interval must be a positive number of seconds")
        if not agent.strip() or len(agent) > 200:
            raise ValueError("agent must be a name of 1 to 200 characters")
        self.agent = agent
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
        self.inbox_key = self.keys.inbox(task_id)
        self.control_keys = (self.kill_key, self.kill_all_key, self.pause_key)
        self._decision_prefix = self.keys.decision("")

        self.killed: ControlValue | None = None
        self.killed_all: ControlValue | None = None
        self.paused: ControlValue | None = None
        self.reachable = False
        self.attempted = False  # the first re-read has succeeded or failed
        self.error: str | None = None
        self.fresh_until = 0.0
        self.quiet = False  # nothing for a checkpoint to do: its fast path
        # An announcement named one of the task's keys and they have not been read since:
        # the next checkpoint reads them itself rather than wait for the reader thread.
        self.announced = False
        self._outage_since: float | None = None

        self.inbox_dirty = True
        self.redirected: set[str] = set()  # escalations whose redirect request_approval returned
        self._inbox_top: str | None = None
        self._handed: list[str] = []  # returned by the last checkpoint, not yet taken
        self._to_ack: list[str] = []  # taken (or skipped), not yet acknowledged
        self._known: set[str] = set()  # handed or skipped, until acknowledged

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
        )
        return escalation_fields(escalation), escalation_id

    # ------------------------------------------------------------------ the view

    def on_message(self, message: Mapping[str, Any]) -> tuple[bool, str | None]:
        """A message of the subscription: whether to re-read the control keys, and the
        escalation whose decision was announced (if any)."""
        if message["type"] == "subscribe":  # (re)subscribed: announcements may be missed
            self.reconnected()
            return True, None
        if message["type"] != "message":
            return False, None
        key = as_text(message["data"])
        if key in self.control_keys:
            self.announced = True
            self.refresh()
            return True, None
        if key == self.inbox_key:
            self.inbox_changed()
        elif key.startswith(self._decision_prefix):
            return False, key[len(self._decision_prefix) :]
        return False, None

    def queue_reread(self, pipe: Any) -> None:
        """The full re-read on a (sync or asyncio) pipeline: the control keys (replies to
        `apply_controls`) and the inbox's newest entry (to `apply_inbox_top`)."""
        pipe.mget(*self.control_keys)
        pipe.xrevrange(self.inbox_key, count=1)

    def apply_controls(self, values: Sequence[object], now: float) -> None:
        """The values of `kill:{task_id}`, `kill:all` and `pause:{task_id}` (MGET)."""
        killed, killed_all, paused = (
            parse_control(key, value) for key, value in zip(self.control_keys, values, strict=True)
        )
        for key, before, after in (
            (self.kill_key, self.killed, killed),
            (self.kill_all_key, self.killed_all, killed_all),
            (self.pause_key, self.paused, paused),
        ):
            if after is not None and before is None:
                log.info("%s is set by %s: %s", key, after.by, after.reason)
            elif after is None and before is not None:
                log.info("%s is lifted", key)
        self.killed, self.killed_all, self.paused = killed, killed_all, paused
        self.announced = False
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

    def apply_inbox_top(self, top: Any) -> None:
        """The inbox's newest entry (XREVRANGE + - COUNT 1): a missed announcement of the
        inbox shows as a newer id."""
        newest = as_text(top[0][0]) if top else None
        if newest != self._inbox_top:
            self._inbox_top = newest
            if newest is not None:
                self.inbox_changed()

    @property
    def is_killed(self) -> bool:
        return self.killed is not None or self.killed_all is not None

    def mark_unreachable(self, error: str, now: float) -> None:
        self.attempted = True
        self.reachable = False
        self.error = error
        if self._outage_since is None:
            self._outage_since = now
            template = "control plane unreachable (%s): " + _OUTAGE[self.on_unreachable]
            log.warning(template, error, self.task_id)
        self.refresh()

    def reconnected(self) -> None:
        """A (re)subscription: announcements may have been missed meanwhile."""
        self.inbox_changed()

    def inbox_changed(self) -> None:
        self.inbox_dirty = True
        self.refresh()

    def verdict(self, now: float) -> Verdict:
        if self.is_killed:
            return "killed"  # a kill seen before an outage stands through it
        if self.reachable and now >= self.fresh_until:
            self.mark_unreachable(f"no successful read for {self.stale_after:g}s", now)
        if not self.reachable:
            return "unreachable"
        return "paused" if self.paused is not None else "go"

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
        if max_pause is None:
            return "wait", self.reread_interval
        if waited >= max_pause:
            raise PauseTimeout(self.task_id, waited, self.paused if verdict == "paused" else None)
        return "wait", min(self.reread_interval, max_pause - waited)

    def state(self, now: float) -> GuardState:
        if not self.attempted:
            return "starting"
        verdict = self.verdict(now)
        return "running" if verdict == "go" else verdict

    def killed_error(self) -> TaskKilled:
        if self.killed is not None:
            return TaskKilled(self.task_id, self.kill_key, self.killed)
        assert self.killed_all is not None
        return TaskKilled(self.task_id, self.kill_all_key, self.killed_all)

    def check_killed(self) -> None:
        if self.is_killed:
            raise self.killed_error()

    def unreachable_message(self) -> str:
        return f"control plane unreachable for task {self.task_id}: {self.error or 'not read yet'}"

    def refresh(self) -> None:
        self.quiet = (
            self.reachable
            and not self.announced
            and self.killed is None
            and self.killed_all is None
            and self.paused is None
            and not self.inbox_dirty
            and not self._handed
            and not self._to_ack
        )

    # ------------------------------------------------------------------ the inbox

    def confirm_taken(self, *, refresh: bool = True) -> None:
        """The agent is back at a checkpoint (or said so): it took the last batch."""
        if self._handed:
            self._to_ack.extend(self._handed)
            self._handed.clear()
            if refresh:
                self.refresh()

    def plan_inbox(self) -> InboxPlan:
        plan = InboxPlan(ack=tuple(self._to_ack), read=self.inbox_dirty)
        self.inbox_dirty = False  # cleared before the read: a push meanwhile sets it again
        return plan

    def queue_inbox(self, pipe: Any, plan: InboxPlan) -> None:
        """Queue the plan's commands on a (sync or asyncio) pipeline."""
        if plan.ack:
            pipe.xack(self.inbox_key, self.consumer, *plan.ack)
        if plan.read:
            pipe.xreadgroup(self.consumer, self.consumer, {self.inbox_key: "0"})
            pipe.xreadgroup(self.consumer, self.consumer, {self.inbox_key: ">"}, count=INBOX_BATCH)

    def plan_ack(self) -> InboxPlan:
        return InboxPlan(ack=tuple(self._to_ack), read=False)

    def inbox_failed(self, plan: InboxPlan, exc: BaseException, *, strict: bool) -> None:
        """Keep what the failed round trip was to do for the next checkpoint; raise
        ControlPlaneUnreachable when `strict` or under on_unreachable="raise"."""
        self.inbox_dirty = self.inbox_dirty or plan.read
        self.refresh()
        if strict or self.on_unreachable == "raise":
            raise ControlPlaneUnreachable(
                f"{self.inbox_key} could not be read: {describe(exc)}"
            ) from exc
        log.warning(
            "%s could not be read (%s); retried at the next checkpoint",
            self.inbox_key,
            describe(exc),
        )

    def inbox_read(self, plan: InboxPlan, replies: Sequence[Any]) -> list[InboxMessage]:
        """The replies of `queue_inbox`, as the messages to hand out.

        Exactly once: an entry handed out (or skipped) is never handed again until it is
        acknowledged, whether it comes back from the pending list or not."""
        pending, new = (stream_entries(r) for r in replies[-2:]) if plan.read else ([], [])
        if plan.ack:
            acked = set(plan.ack)
            self._to_ack = [entry for entry in self._to_ack if entry not in acked]
            self._known -= acked
        if len(new) >= INBOX_BATCH:
            self.inbox_dirty = True
        messages = []
        for entry_id, fields in (*pending, *new):
            if entry_id in self._known:
                continue
            self._known.add(entry_id)
            message = self._message(entry_id, fields)
            if message is None:
                self._to_ack.append(entry_id)
            else:
                self._handed.append(entry_id)
                messages.append(message)
        self.refresh()
        return messages

    def _message(self, entry_id: str, fields: dict[str, str] | None) -> InboxMessage | None:
        if not fields:
            return None  # deleted from the stream while pending
        try:
            entry = InboxEntry.model_validate(fields)
        except ValidationError as exc:
            log.warning(
                "%s entry %s is not an inbox entry of the contract (%s); acknowledged and "
                "skipped: %r",
                self.inbox_key,
                entry_id,
                exc.errors()[0]["msg"],
                fields,
            )
            return None
        if entry.kind == "redirect" and entry.escalation_id in self.redirected:
            log.info(
                "%s entry %s repeats the redirect of escalation %s, which request_approval "
                "already returned; acknowledged and not handed out again",
                self.inbox_key,
                entry_id,
                entry.escalation_id,
            )
            return None
        return InboxMessage(
            id=entry_id,
            kind=entry.kind,
            text=entry.text,
            author=entry.author,
            source=entry.source,
            at=entry.at,
            escalation_id=entry.escalation_id or None,
        )

    def closing_acks(self, *, took_last: bool) -> tuple[str, ...]:
        """What to acknowledge on close: the last batch only when the agent exited cleanly
        (after an exception it may not have acted on it, so a restart gets it again)."""
        if took_last:
            self.confirm_taken(refresh=False)
        return tuple(self._to_ack)

    # ------------------------------------------------------------------ approvals

    def note_outcome(self, outcome: ApprovalOutcome) -> None:
        if outcome.decision == "redirected":
            self.redirected.add(outcome.escalation_id)
            self.inbox_dirty = True  # its inbox copy is there: read it now, to skip it
            self.refresh()
