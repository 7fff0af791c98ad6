"""Decisions (CONTRACTS §11): approve (with the arguments as proposed, or as a person
edited them), reject, redirect, terminate; and, for an escalation that needs several
people, approvals counted until the quorum is reached. One decision per escalation: the
row is locked while an approval is counted, and the final state is a compare-and-set, so
two clicks, two replicas or twenty approvers racing end in exactly one decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import ids
from bot.contracts import OUTCOME_OF, Verdict
from bot.control import Effect
from bot.core.agent_values import AgentValues
from bot.core.base import (
    MAX_TEXT,
    Change,
    already_decided,
    checked_text,
    control_value,
    decision_value,
    inbox_effect,
    outcome_effect,
)
from bot.db import approvals, controls, escalations, firings
from bot.db.firings import release_effects
from bot.edited_args import changes, check_args
from bot.errors import InvalidInput, NothingChanged
from bot.records import ActionResult, AuditAction, EscalationRecord

VERDICT_ACTIONS: dict[str, AuditAction] = {
    "approve": AuditAction.APPROVE,
    "reject": AuditAction.REJECT,
    "terminate": AuditAction.TERMINATE,
    "redirect": AuditAction.REDIRECT,
}


class Decisions(AgentValues):
    def decide(
        self,
        escalation_id: str,
        actor: str,
        verdict: Verdict,
        *,
        comment: str | None = None,
        instruction: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> ActionResult:
        """Decide, or (approve, with a quorum not yet reached) count an approval. `args`:
        the arguments as the approver edited them (approve only)."""
        ids.check_escalation_id(escalation_id)
        if verdict not in OUTCOME_OF:
            raise InvalidInput(f"unknown decision {verdict!r} (use {', '.join(OUTCOME_OF)})")
        if args is not None and verdict != "approve":
            raise InvalidInput("edited arguments go with approve, not with " + verdict)
        comment = checked_text(comment, "the comment", required=False)
        instruction = checked_text(instruction, "the instruction", required=verdict == "redirect")

        def build(session: Session, now: datetime) -> Change:
            current = escalations.lock(session, escalation_id)
            if current is None:
                current = self._existing(session, escalation_id)  # raises UnknownEscalation
            if not current.is_open:
                raise already_decided(current)
            if verdict == "approve":
                return self._approve(session, current, actor, args, comment, now)
            return self._final(session, current, actor, verdict, comment, instruction, {}, now)

        return self._perform(actor, "operator", verdict, build, escalation_id=escalation_id)

    def _approve(
        self,
        session: Session,
        current: EscalationRecord,
        actor: str,
        args: dict[str, Any] | None,
        comment: str | None,
        now: datetime,
    ) -> Change:
        detail: dict[str, Any] = {}
        edited = False
        if args is not None:
            check_args(self._restored(current.id, args), (current.action or {}).get("schema"))
            edited = args != current.args_under_approval
        if edited:
            assert args is not None
            escalations.set_edit(session, current.id, args, actor)
            detail = {
                "proposed": current.proposed_args,
                "approved": args,
                "changed": changes(current.proposed_args, args),
            }
        needed = current.approvals_needed
        if needed > 1:
            if edited:
                approvals.clear(session, current.id)  # they approved other arguments
            if not approvals.add(session, current.id, actor, now):
                count = len(current.approvals)
                raise NothingChanged(
                    f"you already approved escalation {current.id} ({count} of {needed}): "
                    "another person must approve"
                )
            approved_by = approvals.of(session, current.id)
            detail |= {"approvals": approved_by, "needed": needed}
            if len(approved_by) < needed:
                return self._counted(session, current, actor, approved_by, comment, detail)
        return self._final(session, current, actor, "approve", comment, None, detail, now)

    def _counted(
        self,
        session: Session,
        current: EscalationRecord,
        actor: str,
        approved_by: list[str],
        comment: str | None,
        detail: dict[str, Any],
    ) -> Change:
        """An approval counted; the quorum is not reached yet."""
        needed = current.approvals_needed
        left = needed - len(approved_by)
        record = escalations.find(session, current.id)
        return Change(
            action=AuditAction.APPROVE,
            event="approved_partly",
            message=(
                f"Approval {len(approved_by)} of {needed} of escalation {current.id} "
                f"({current.task_id}) recorded: {left} more needed, from different people."
            ),
            task_id=current.task_id,
            escalation_id=current.id,
            reason=comment,
            state=current.agent_state,
            detail={"step": "counted", **detail},
            escalation=record,
        )

    def _final(
        self,
        session: Session,
        current: EscalationRecord,
        actor: str,
        verdict: Verdict,
        comment: str | None,
        instruction: str | None,
        detail: dict[str, Any],
        now: datetime,
    ) -> Change:
        outcome = OUTCOME_OF[verdict]
        decided = escalations.decide(
            session,
            current.id,
            outcome=outcome,
            by=actor,
            at=now,
            comment=comment,
            instruction=instruction,
        )
        if decided is None:
            raise already_decided(self._existing(session, current.id))
        escalation_id, task_id = decided.id, decided.task_id
        value = decision_value(decided, self._agent_args(decided))
        effects = [Effect("decision", escalation_id, "set", value)]
        effects.append(Effect("redaction", escalation_id, "expire"))  # kept a day more
        # A trigger that only escalated may fire again once its escalation is decided.
        effects += release_effects(firings.release_decided(session, [escalation_id], actor, now))
        message = f"{outcome.capitalize()} escalation {escalation_id} ({task_id})."
        if decided.edited_args is not None and verdict == "approve":
            message += " With the arguments as edited."
        if verdict == "terminate":
            killed = controls.activate(
                session,
                kind="kill",
                target=task_id,
                reason=f"terminated: {decided.reason}"[:MAX_TEXT],
                by=actor,
                at=now,
                escalation_id=escalation_id,
            )
            if killed is not None:
                effects.append(Effect("kill", task_id, "set", control_value(killed)))
            effects.append(
                outcome_effect(
                    task_id,
                    "terminated",
                    actor,
                    now,
                    agent=decided.agent,
                    escalation_id=escalation_id,
                    task_type=decided.task_type,
                )
            )
            message += f" {task_id} is killed."
        if verdict == "redirect":
            effects.append(
                inbox_effect(task_id, "redirect", instruction or "", actor, now, escalation_id)
            )
        return Change(
            action=VERDICT_ACTIONS[verdict],
            event="decided",
            message=message,
            task_id=task_id,
            escalation_id=escalation_id,
            reason=comment or instruction,
            state=decided.agent_state,
            detail={"outcome": outcome, **detail},
            effects=effects,
            escalation=decided,
        )
