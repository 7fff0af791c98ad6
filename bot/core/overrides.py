"""Overrides: kill, pause, revive and resume a task (or every task), and words for the
running agent (a redirect, a message). Recovery verbs (restart, abandon) belong here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from bot import ids
from bot.clock import iso
from bot.control import ControlPlaneError, Effect
from bot.core.base import (
    NO_REASON,
    Build,
    Change,
    InboxKind,
    ServiceBase,
    checked_text,
    control_value,
    inbox_effect,
)
from bot.db import audit, controls, firings, upkeep
from bot.db.firings import release_effects
from bot.errors import NothingChanged
from bot.keys import ALL
from bot.policy import Role
from bot.records import ActionResult, AuditAction

REVIVE_ALL_WINDOW = timedelta(minutes=10)
ControlKind = Literal["kill", "pause"]


class Overrides(ServiceBase):
    def kill(
        self,
        task_id: str,
        actor: str,
        reason: str | None = None,
        *,
        escalation_id: str | None = None,
    ) -> ActionResult:
        """Kill a task, or every task of an agent (`agent:<name>`)."""
        target = ids.check_target(task_id)
        result = self._activate("kill", target, actor, reason, escalation_id, role="operator")
        return self._noting_unseen(result, target, "the kill holds when it starts")

    def kill_all(self, actor: str, reason: str | None = None) -> ActionResult:
        return self._activate("kill", ALL, actor, reason, None, role="admin")

    def pause(self, task_id: str, actor: str, reason: str | None = None) -> ActionResult:
        """Pause a task, or every task of an agent (`agent:<name>`)."""
        target = ids.check_target(task_id)
        result = self._activate("pause", target, actor, reason, None, role="operator")
        return self._noting_unseen(result, target, "the pause holds when it starts")

    def revive(self, task_id: str, actor: str) -> ActionResult:
        return self._lift("kill", ids.check_target(task_id), actor)

    def resume(self, task_id: str, actor: str) -> ActionResult:
        return self._lift("pause", ids.check_target(task_id), actor)

    def revive_all(self, actor: str) -> ActionResult:
        """The first admin asks; a second, different admin confirms; only then is it lifted."""

        def build(session: Session, now: datetime) -> Change:
            current = controls.lock(session, "kill", ALL)
            if current is None or not current.active:
                raise NothingChanged("kill all is not active: there is nothing to revive")
            requested_by = current.revive_requested_by
            fresh = (
                requested_by is not None
                and current.revive_requested_at is not None
                and now - current.revive_requested_at <= REVIVE_ALL_WINDOW
            )
            if fresh and requested_by == actor:
                raise NothingChanged(
                    "you already asked to revive all: a second, different admin must confirm"
                )
            if not fresh:
                controls.request_revive(session, "kill", ALL, actor, now)
                minutes = int(REVIVE_ALL_WINDOW.total_seconds() // 60)
                return Change(
                    action=AuditAction.REVIVE,
                    event="revive_all_requested",
                    message=(
                        f"Revive all requested by {actor}. kill:all stays until a second, "
                        f"different admin confirms within {minutes} minutes "
                        "(`revive all` again)."
                    ),
                    task_id=ALL,
                    detail={"target": ALL, "step": "requested"},
                    control=controls.current(session, "kill", ALL),
                )
            lifted = controls.lift(session, kind="kill", target=ALL, by=actor, at=now)
            return Change(
                action=AuditAction.REVIVE,
                event="revived_all",
                message=(
                    f"Revived all tasks: kill:all is removed "
                    f"(asked by {requested_by}, confirmed by {actor})."
                ),
                task_id=ALL,
                detail={"target": ALL, "step": "confirmed", "requested_by": requested_by},
                effects=[Effect("kill", ALL, "delete")],
                control=lifted,
            )

        return self._perform(actor, "admin", "revive all", build, task_id=ALL)

    def redirect(
        self, task_id: str, actor: str, instruction: str, *, escalation_id: str | None = None
    ) -> ActionResult:
        ids.check_task_id(task_id)
        text = checked_text(instruction, "the instruction", required=True) or ""
        result = self._to_inbox("redirect", task_id, actor, text, escalation_id)
        return self._noting_unseen(result, task_id, "the instruction waits in its inbox")

    def relay_message(
        self,
        task_id: str,
        actor: str,
        text: str,
        *,
        escalation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """An operator's words to the running agent. With `idempotency_key` (e.g. the Slack
        message's channel and ts) a repeat is refused as NothingChanged, so a retried
        event never reaches the agent twice."""
        ids.check_task_id(task_id)
        body = checked_text(text, "the message", required=True) or ""
        return self._to_inbox("message", task_id, actor, body, escalation_id, idempotency_key)

    # ------------------------------------------------------------------ internals

    def _noting_unseen(self, result: ActionResult, target: str, then: str) -> ActionResult:
        """An action on a task no guard reported in the last 24 h still acts (an early
        kill holds when the task starts), and says so. Agent-wide targets are not tasks."""
        if ids.is_agent_target(target) or target == ALL:
            return result
        try:
            seen = self.fleet.seen([target], self.clock())
        except ControlPlaneError:
            return result  # the fleet cannot be read: say nothing rather than guess
        if target in seen:
            return result
        note = f" No guard of {target} has reported in the last 24 h: {then}."
        return replace(result, message=result.message + note)

    def _activate(
        self,
        kind: ControlKind,
        target: str,
        actor: str,
        reason: str | None,
        escalation_id: str | None,
        *,
        role: Role,
    ) -> ActionResult:
        reason = checked_text(reason, "the reason", required=False) or NO_REASON
        if escalation_id is not None:
            ids.check_escalation_id(escalation_id)
        attempted = "kill all" if target == ALL else kind
        build = self._activation(kind, target, actor, reason, escalation_id)
        return self._perform(
            actor, role, attempted, build, task_id=target, escalation_id=escalation_id
        )

    def _activation(
        self, kind: ControlKind, target: str, actor: str, reason: str, escalation_id: str | None
    ) -> Build:
        """The kill or pause itself, run inside an action's transaction: its own, or that
        of an action that pauses as part of it (a flagged review)."""
        everything = target == ALL
        action = (
            AuditAction.KILL_ALL
            if everything
            else (AuditAction.KILL if kind == "kill" else AuditAction.PAUSE)
        )

        def build(session: Session, now: datetime) -> Change:
            # The control and its audit row in one statement: a kill's path to its key.
            entry = audit.Entry(
                at=now,
                actor=actor,
                action=action,
                policy_version=self.policy.version,
                task_id=target,
                escalation_id=escalation_id,
                reason=reason,
                detail=self._noted(None),
            )
            written = controls.activate_audited(
                session,
                kind=kind,
                target=target,
                reason=reason,
                by=actor,
                at=now,
                escalation_id=escalation_id,
                entry=entry,
            )
            if written is None:
                current = controls.current(session, kind, target)
                assert current is not None  # the activation found it active
                what = "all tasks are" if everything else f"{target} is"
                state = "killed" if kind == "kill" else "paused"
                raise NothingChanged(
                    f"{what} already {state} (by {current.set_by} at {iso(current.set_at)}: "
                    f"{current.reason})"
                )
            activated, record = written
            key = self.control.key_of(Effect(kind, target, "set"))
            if everything:
                message = "Killed all tasks: kill:all is set; every agent stops at its next check."
                event = "killed_all"
            elif ids.is_agent_target(target):
                verb, does = ("Killed", "stops") if kind == "kill" else ("Paused", "waits")
                message = (
                    f"{verb} every task of {target.removeprefix('agent:')}: {key} is set; each "
                    f"of its tasks {does} at its next check."
                )
                event = "killed" if kind == "kill" else "paused"
            elif kind == "kill":
                message = f"Killed {target}: {key} is set; the agent stops at its next check."
                event = "killed"
            else:
                message = f"Paused {target}: {key} is set; the agent waits at its next check."
                event = "paused"
            return Change(
                action=action,
                event=event,
                message=message,
                task_id=target,
                escalation_id=escalation_id,
                reason=reason,
                effects=[Effect(kind, target, "set", control_value(activated))],
                control=activated,
                audited=record,
            )

        return build

    def _lift(self, kind: ControlKind, target: str, actor: str) -> ActionResult:
        action = AuditAction.REVIVE if kind == "kill" else AuditAction.RESUME

        def build(session: Session, now: datetime) -> Change:
            lifted = controls.lift(session, kind=kind, target=target, by=actor, at=now)
            if lifted is None:
                state = "killed" if kind == "kill" else "paused"
                hint = ""
                if kind == "kill" and controls.is_active(session, "kill", ALL):
                    hint = " (kill all is active: `revive all` lifts it)"
                raise NothingChanged(f"{target} is not {state}{hint}")
            verb = "Revived" if kind == "kill" else "Resumed"
            key = self.control.key_of(Effect(kind, target, "delete"))
            # A trigger that paused or killed it may fire again, from an empty window.
            released = firings.release_lifted(session, kind, target, actor, now)
            return Change(
                action=action,
                event="revived" if kind == "kill" else "resumed",
                message=f"{verb} {target}: {key} is removed.",
                task_id=target,
                escalation_id=lifted.escalation_id,
                detail={"released": [r.trigger for r in released]} if released else None,
                effects=[Effect(kind, target, "delete"), *release_effects(released)],
                control=lifted,
            )

        return self._perform(actor, "operator", action.value, build, task_id=target)

    def _to_inbox(
        self,
        kind: InboxKind,
        task_id: str,
        actor: str,
        text: str,
        escalation_id: str | None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        if escalation_id is not None:
            ids.check_escalation_id(escalation_id)
        action = AuditAction.REDIRECT if kind == "redirect" else AuditAction.MESSAGE

        def build(session: Session, now: datetime) -> Change:
            if idempotency_key is not None and not upkeep.claim_idempotency_key(
                session, idempotency_key, now
            ):
                raise NothingChanged(f"already delivered to {task_id}'s inbox")
            noun = "Redirect" if kind == "redirect" else "Message"
            return Change(
                action=action,
                event="redirected" if kind == "redirect" else "messaged",
                message=f"{noun} delivered to {task_id}'s inbox.",
                task_id=task_id,
                escalation_id=escalation_id,
                reason=text,
                effects=[inbox_effect(task_id, kind, text, actor, now, escalation_id)],
            )

        return self._perform(
            actor, "operator", action.value, build, task_id=task_id, escalation_id=escalation_id
        )
