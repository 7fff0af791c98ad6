"""Automated triggers (CONTRACTS §9), the service side: a trigger whose window held is
recorded once (the database's unique active firing), does what its `then` says through
the same writes as an operator's kill or pause, and opens an escalation of kind
`exception` that routes like any other. Its firing is released when an operator lifts
what it did (resume, revive) or, when it only escalated, when that escalation is decided.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import ids
from bot.contracts import Escalation
from bot.control import ControlPlaneError, Effect
from bot.core.base import MAX_TEXT, control_value
from bot.core.escalations import Escalations, policy_request
from bot.core.events import ServiceEvent
from bot.db import audit, controls, escalations, firings
from bot.db.firings import NewFiring
from bot.policy import evaluate
from bot.policy.fields import format_duration
from bot.policy.triggers import Trigger
from bot.records import AuditAction, EscalationRecord
from bot.signal_windows import Fired, SignalWindows, member_of

log = logging.getLogger("bot.triggers")
STUCK = timedelta(seconds=5)  # a pending firing older than this is recorded by the sweep


@dataclass(frozen=True)
class Firing:
    """What a trigger did when it fired."""

    trigger: str
    subject: str
    firing_id: int
    actions: tuple[str, ...]
    escalation_id: str | None


class Triggers(Escalations):
    def fire_trigger(self, fired: Fired) -> Firing | None:
        """Record the firing and do what the trigger says; None when it had fired already
        for that subject (another replica, an earlier signal) or the policy no longer
        has it. Raises ControlPlaneUnavailable when Redis could not be written (it is
        then written by reconcile; the firing is recorded)."""
        member = member_of(fired.trigger, fired.subject)
        trigger = self.policy.trigger(fired.trigger)
        if trigger is None:  # the policy changed since the window held: forget it
            self.control.apply([Effect("trigger", member, "delete")])
            return None
        task_type = self._task_type(fired.task_id) if "escalate" in trigger.then else None
        now = self.clock()
        with self.store.transaction() as session:
            detail = self._detail(trigger, fired)
            firing_id = firings.start(session, self._new_firing(trigger, fired, detail), now)
            if firing_id is None:
                self.control.apply([Effect("trigger", member, "set", {"firing": "earlier"})])
                return None
            entries, effects, done = self._act(session, trigger, fired, now)
            escalation_id = None
            opened: EscalationRecord | None = None
            if "escalate" in trigger.then:
                opened = self._escalate(session, trigger, fired, task_type, detail, now)
                escalation_id = opened.id
                firings.note_escalation(session, firing_id, escalation_id)
                done.append("escalate")
            entries.insert(0, self._entry(trigger, fired, detail, escalation_id, done, now))
            records = audit.append_many(session, entries)
            effects.append(Effect("trigger", member, "set", {"firing": firing_id}))
            try:
                self.control.apply(effects)
            except ControlPlaneError as exc:
                self._record_failure(
                    session,
                    now,
                    effects,
                    str(exc),
                    task_id=fired.task_id,
                    escalation_id=escalation_id,
                    for_seq=records[-1].seq,
                )
        for record in records:
            self._emit(
                ServiceEvent(
                    str(record.action), "policy", record.task_id, escalation_id, audit=record
                )
            )
        if opened is not None:
            self._emit(
                ServiceEvent("opened", "policy", fired.task_id, opened.id, escalation=opened)
            )
        return Firing(fired.trigger, fired.subject, firing_id, tuple(done), escalation_id)

    def recover_firings(self, windows: SignalWindows) -> int:
        """Firings claimed in Redis but never recorded (the bot died between the two):
        record them now. Runs every sweep; returns how many were recorded."""
        now_ms = int(self.clock().timestamp() * 1000)
        recorded = 0
        for claimed_at, fired in windows.pending():
            if now_ms - claimed_at < STUCK.total_seconds() * 1000:
                continue
            if self.fire_trigger(fired) is not None:
                recorded += 1
        return recorded

    # ------------------------------------------------------------------ internals

    def _task_type(self, task_id: str) -> str | None:
        try:
            live = self.fleet.task(task_id, self.clock())
        except ControlPlaneError:
            live = None
        if live is not None and live.task_type:
            return live.task_type
        with self.store.reading() as session:
            newest = escalations.newest_of_task(session, task_id)
        return newest.task_type if newest is not None else None

    @staticmethod
    def _detail(trigger: Trigger, fired: Fired) -> dict[str, object]:
        window = trigger.window
        return {
            "trigger": trigger.name,
            "signal": trigger.signal,
            "measure": trigger.measure(),
            "window": format_duration(window) if window is not None else None,
            "value": fired.value,
            "comparator": trigger.comparator,
            "threshold": trigger.threshold,
            "scope": trigger.scope,
            "subject": fired.subject,
            "then": list(trigger.then),
            "detail": fired.detail or None,
        }

    @staticmethod
    def _new_firing(trigger: Trigger, fired: Fired, detail: dict[str, object]) -> NewFiring:
        return NewFiring(
            trigger=trigger.name,
            subject=fired.subject,
            task_id=fired.task_id,
            agent=fired.agent,
            then=tuple(trigger.then),
            value=fired.value,
            detail=detail,
        )

    def _act(
        self, session: Session, trigger: Trigger, fired: Fired, now: datetime
    ) -> tuple[list[audit.Entry], list[Effect], list[str]]:
        """Pause and kill, as an operator's would (the subject's keys, audited as
        `policy`), unless already in force."""
        reason = f"trigger {trigger.name}: {trigger.describe(fired.value)}"[:MAX_TEXT]
        entries: list[audit.Entry] = []
        effects: list[Effect] = []
        done: list[str] = []
        for kind in ("pause", "kill"):
            if kind not in trigger.then:
                continue
            control = controls.activate(
                session,
                kind=kind,
                target=fired.subject,
                reason=reason,
                by="policy",
                at=now,
                escalation_id=None,
            )
            if control is None:
                continue  # already paused or killed: nothing to do
            effects.append(Effect(kind, fired.subject, "set", control_value(control)))
            entries.append(
                audit.Entry(
                    at=now,
                    actor="policy",
                    action=AuditAction.PAUSE if kind == "pause" else AuditAction.KILL,
                    policy_version=self.policy.version,
                    task_id=fired.subject,
                    reason=reason,
                    detail={"trigger": trigger.name},
                )
            )
            done.append(kind)
        return entries, effects, done

    def _escalate(
        self,
        session: Session,
        trigger: Trigger,
        fired: Fired,
        task_type: str | None,
        detail: dict[str, object],
        now: datetime,
    ) -> EscalationRecord:
        escalation = Escalation.model_validate(
            {
                "task_id": fired.task_id,
                "agent": fired.agent,
                "task_type": task_type,
                "kind": "exception",
                "severity": trigger.severity,
                "reason": f"Trigger {trigger.name}: {trigger.describe(fired.value)}",
                "context": {
                    "policy_rule": f"triggers.{trigger.name}",
                    "source": fired.detail or None,
                    "trigger": detail,
                },
            }
        )
        escalation_id = ids.new_escalation_id()
        evaluation = evaluate(self.policy, policy_request(escalation))
        record = escalations.insert(session, self._new(escalation, escalation_id, evaluation, now))
        assert record is not None  # a new ULID: nobody stored it first
        return record

    def _entry(
        self,
        trigger: Trigger,
        fired: Fired,
        detail: dict[str, object],
        escalation_id: str | None,
        done: list[str],
        now: datetime,
    ) -> audit.Entry:
        return audit.Entry(
            at=now,
            actor="policy",
            action=AuditAction.TRIGGER,
            policy_version=self.policy.version,
            task_id=fired.task_id,
            escalation_id=escalation_id,
            reason=f"{trigger.name}: {trigger.describe(fired.value)}",
            detail={**detail, "done": done},
        )
