"""Recovery after a pause or a kill (CONTRACTS §11): restart a paused task with new
instructions, or abandon a task, which kills it and tells its end user (`outcomes`).

Both act only on a task the bot has heard of (its store, or the fleet in the last 24 h):
a task never seen has nothing to recover, so the refusal changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot import ids
from bot.clock import iso
from bot.control import ControlPlaneError, Effect
from bot.core.base import (
    MAX_TEXT,
    Change,
    ServiceBase,
    checked_text,
    control_value,
    inbox_effect,
    outcome_effect,
)
from bot.db import controls, escalations, firings, upkeep
from bot.db.firings import release_effects
from bot.errors import NothingChanged, UnknownTask
from bot.records import ActionResult, AuditAction, LiveTask

ABANDONED = "abandoned: "
NO_EXPLANATION = "no explanation given"


class Recovery(ServiceBase):
    def restart(self, task_id: str, actor: str, instruction: str) -> ActionResult:
        """An `inbox:{task_id}` entry of kind `restart` with the instruction, then the
        task's pause lifted: one action, one audit row (`restart`), one round trip."""
        ids.check_task_id(task_id)
        text = checked_text(instruction, "the instruction", required=True) or ""
        live = self._live(task_id)

        def build(session: Session, now: datetime) -> Change:
            lifted = controls.lift(session, kind="pause", target=task_id, by=actor, at=now)
            if lifted is None:
                raise self._not_paused(session, task_id, live)
            # A trigger that paused it may fire again, as after a resume.
            released = firings.release_lifted(session, "pause", task_id, actor, now)
            key = self.control.key_of(Effect("pause", task_id, "delete"))
            return Change(
                action=AuditAction.RESTART,
                event="restarted",
                message=(
                    f"Restarted {task_id}: the instruction is in its inbox (kind restart) and "
                    f"{key} is removed; the agent goes on with it at its next check."
                ),
                task_id=task_id,
                escalation_id=lifted.escalation_id,
                reason=text,
                detail={"released": [r.trigger for r in released]} if released else None,
                effects=[
                    inbox_effect(task_id, "restart", text, actor, now, lifted.escalation_id),
                    Effect("pause", task_id, "delete"),
                    *release_effects(released),
                ],
                control=lifted,
            )

        return self._perform(actor, "operator", "restart", build, task_id=task_id)

    def abandon(self, task_id: str, actor: str, explanation: str | None = None) -> ActionResult:
        """Give the task up: killed with the reason `abandoned: …` (a kill already in
        force is relabelled; the agent has stopped anyway), its pause lifted, and an
        `outcomes` entry whose notice is the explanation, for the task's end user."""
        ids.check_task_id(task_id)
        notice = checked_text(explanation, "the explanation", required=False)
        reason = (ABANDONED + (notice or NO_EXPLANATION))[:MAX_TEXT]
        live = self._live(task_id)

        def build(session: Session, now: datetime) -> Change:
            kill = controls.current(session, "kill", task_id)
            if kill is not None and kill.active and kill.reason.startswith(ABANDONED):
                raise NothingChanged(
                    f"{task_id} was already abandoned by {kill.set_by} at {iso(kill.set_at)} "
                    f"({kill.reason})"
                )
            if live is None and not upkeep.task_is_known(session, task_id):
                raise _never_seen(task_id, "abandon")
            pause = controls.lift(session, kind="pause", target=task_id, by=actor, at=now)
            was_killed = kill is not None and kill.active
            stopped_by = pause or (kill if was_killed else None)
            escalation_id = stopped_by.escalation_id if stopped_by else None
            if was_killed:
                controls.lift(session, kind="kill", target=task_id, by=actor, at=now)
            killed = controls.activate(
                session,
                kind="kill",
                target=task_id,
                reason=reason,
                by=actor,
                at=now,
                escalation_id=escalation_id,
            )
            assert killed is not None  # inactive, or lifted just above
            newest = escalations.newest_of_task(session, task_id)
            effects = [Effect("kill", task_id, "set", control_value(killed))]
            released: list[firings.Released] = []
            if pause is not None:
                released = firings.release_lifted(session, "pause", task_id, actor, now)
                effects.append(Effect("pause", task_id, "delete"))
            effects += release_effects(released)
            effects.append(
                outcome_effect(
                    task_id,
                    "abandoned",
                    actor,
                    now,
                    agent=newest.agent if newest else (live.agent if live else None),
                    escalation_id=escalation_id,
                    notice=notice,
                    task_type=(newest.task_type if newest else None)
                    or (live.task_type if live else None),
                )
            )
            key = self.control.key_of(Effect("kill", task_id, "set"))
            return Change(
                action=AuditAction.ABANDON,
                event="abandoned",
                message=(
                    f"Abandoned {task_id}: {key} is set ({reason}) and its end user is told "
                    "(outcomes)."
                ),
                task_id=task_id,
                escalation_id=escalation_id,
                reason=reason,
                detail={
                    "notice": notice,
                    "was_killed": was_killed,
                    "was_paused": pause is not None,
                    **({"released": [r.trigger for r in released]} if released else {}),
                },
                effects=effects,
                control=killed,
            )

        return self._perform(actor, "operator", "abandon", build, task_id=task_id)

    # ------------------------------------------------------------------ internals

    def _live(self, task_id: str) -> LiveTask | None:
        """The task as the fleet saw it in the last 24 h; None too when Redis cannot say."""
        try:
            return self.fleet.task(task_id, self.clock())
        except ControlPlaneError:
            return None

    def _not_paused(
        self, session: Session, task_id: str, live: LiveTask | None
    ) -> NothingChanged | UnknownTask:
        kill = controls.current(session, "kill", task_id)
        if kill is not None and kill.active:
            return NothingChanged(
                f"{task_id} is killed ({kill.reason}): revive it first "
                f"(`revive {task_id}`), or abandon it"
            )
        if live is None and not upkeep.task_is_known(session, task_id):
            return _never_seen(task_id, "restart")
        return NothingChanged(
            f"{task_id} is not paused: restart lifts a pause (`redirect` gives a running "
            "task a new instruction)"
        )


def _never_seen(task_id: str, verb: str) -> UnknownTask:
    return UnknownTask(
        f"task {task_id} was never seen (no escalation, kill or pause, and no guard in the "
        f"last 24 h): there is nothing to {verb}"
    )
