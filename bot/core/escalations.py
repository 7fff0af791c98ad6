"""Escalations: open one from an agent's request, acknowledge it, decide it.

The policy routes it and may decide it alone (`open_escalation`); people decide it in
bot/core/decisions.py.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy.orm import Session

from bot import ids
from bot.clock import iso
from bot.contracts import Escalation
from bot.control import REDACTION_TTL_SECONDS, ControlPlaneError, Effect
from bot.core.agent_values import AgentValues
from bot.core.base import (
    Change,
    already_decided,
    decision_value,
    outcome_effect,
)
from bot.core.events import ServiceEvent
from bot.core.reviews import decision_review
from bot.db import escalations, raw_escalations, reviews
from bot.db.escalations import NewEscalation
from bot.errors import ControlPlaneUnavailable, InvalidInput, NothingChanged
from bot.policy import Evaluation, Request, evaluate, sampled
from bot.policy.evaluate import route_of
from bot.records import ActionResult, AuditAction, EscalationRecord
from bot.redaction.escalation import redact_escalation


def policy_request(escalation: Escalation) -> Request:
    action = escalation.action
    return Request(
        kind=escalation.kind,
        severity=escalation.severity,
        task_type=escalation.task_type,
        agent=escalation.agent,
        action=action.name if action else None,
        args=dict(action.args) if action else {},
        confidence=escalation.confidence,
        tier=escalation.tier,
    )


class _Raced(Exception):
    """Another writer stored the same escalation id first."""


class Escalations(AgentValues):
    def open_escalation(self, escalation: Escalation) -> tuple[EscalationRecord, bool]:
        """Open it (or find it: the id is the idempotency key). True when newly opened.

        The policy routes it (ladder, starting tier, deadlines, quorum) and, for an
        approval it may decide alone, decides it at once: no card, the agent's answer in
        `decision:{id}` within milliseconds."""
        new, evaluation, raw = self._prepare(escalation)
        escalation_id = new.id
        if new.decided is not None:
            return self._decided_by_policy(new, evaluation, raw)
        with self.store.transaction() as session:
            created = escalations.insert(session, new) is not None
            if created and raw is not None:
                self._keep_raw(session, escalation_id, *raw)
        with self.store.reading() as session:
            record = self._existing(session, escalation_id)
        if created:
            self._emit(
                ServiceEvent(
                    "opened", f"agent:{record.agent}", record.task_id, record.id, escalation=record
                )
            )
        else:  # the same id again: an agent asking again after a restart
            self._redeliver_decision(record)
        return record, created

    def _prepare(
        self, escalation: Escalation
    ) -> tuple[NewEscalation, Evaluation, tuple[Escalation, dict[str, str]] | None]:
        """What the policy says of it, redacted, its placeholders saved in Redis: ready to
        store (the raw copy too, under `store_raw`)."""
        policy = self.policy
        try:
            evaluation = evaluate(policy, policy_request(escalation))
        except KeyError:
            ladder = route_of(policy, policy_request(escalation))[1]
            names = ", ".join(policy.tier_names(ladder))
            raise InvalidInput(f"unknown tier {escalation.tier!r} (tiers: {names})") from None
        escalation_id = escalation.escalation_id or ids.new_escalation_id()
        rules = policy.redaction.rules
        shown, placeholders = redact_escalation(escalation, rules)
        new = self._new(shown, escalation_id, evaluation, self.clock())
        # The map first: the stored escalation is never without the way back to the
        # agent's values. A retry of the same escalation numbers it the same way.
        self._save_placeholders(escalation_id, placeholders, decided=new.decided is not None)
        raw = (escalation, placeholders) if rules.store_raw else None
        return new, evaluation, raw

    def _save_placeholders(
        self, escalation_id: str, placeholders: dict[str, str], *, decided: bool
    ) -> None:
        try:
            self.control.save_placeholders(
                escalation_id, placeholders, ttl=REDACTION_TTL_SECONDS if decided else None
            )
        except ControlPlaneError as exc:
            raise ControlPlaneUnavailable(
                f"the placeholders of escalation {escalation_id} could not be saved in Redis "
                f"({exc}): it is opened when Redis is back"
            ) from exc

    def _keep_raw(
        self,
        session: Session,
        escalation_id: str,
        escalation: Escalation,
        placeholders: dict[str, str],
    ) -> None:
        payload = escalation.model_dump(mode="json", by_alias=True)
        raw_escalations.add(
            session,
            escalation_id,
            payload | {"escalation_id": escalation_id},
            placeholders,
            self.clock(),
        )

    def _new(
        self, escalation: Escalation, escalation_id: str, evaluation: Evaluation, now: datetime
    ) -> NewEscalation:
        decision = evaluation.decision
        start = evaluation.start
        decided = {"auto": "approved", "deny": "rejected"}.get(decision.outcome)
        deadline = evaluation.deadline_of(start)
        severity_deadline = evaluation.ack_timeout
        return NewEscalation(
            id=escalation_id,
            task_id=escalation.task_id,
            agent=escalation.agent,
            task_type=escalation.task_type,
            kind=escalation.kind,
            severity=escalation.severity,
            confidence=escalation.confidence,
            reason=escalation.reason,
            payload=escalation.model_dump(mode="json") | {"escalation_id": escalation_id},
            tier=start.name,
            channel=start.channel,
            at=now,
            policy_version=self.policy.version,
            # Until its card is posted (which starts the clock afresh), the deadline runs
            # from now plus the time a card may take to be posted.
            next_action_at=now + deadline + self.policy.delivery.unposted_grace,
            page=self.paging and start.page,
            ladder=evaluation.ladder,
            route=evaluation.route,
            ack_timeout_seconds=(
                int(severity_deadline.total_seconds()) if severity_deadline else None
            ),
            approvals_needed=max(evaluation.approvals, escalation.approvals or 1),
            policy_note=decision.note,
            decided=decided,
            decision_rule=decision.rule if decided else None,
        )

    def _decided_by_policy(
        self,
        new: NewEscalation,
        evaluation: Evaluation,
        raw: tuple[Escalation, dict[str, str]] | None,
    ) -> tuple[EscalationRecord, bool]:
        """`auto` approves and `deny` rejects, as `policy`: an audit row naming the rule,
        the agent's answer in Redis, no card (that is the point)."""
        decision = evaluation.decision
        approved = new.decided == "approved"
        review_rate = decision.review_sample

        def build(session: Session, now: datetime) -> Change:
            record = escalations.insert(session, new)
            if record is None:
                raise _Raced
            if raw is not None:
                self._keep_raw(session, new.id, *raw)
            if review_rate and sampled(new.id, review_rate):
                reviews.add(session, decision_review(record, review_rate), now)
            effects = [Effect("decision", new.id, "set", decision_value(record))]
            if not approved:  # a deny ends the task: its end user is told
                effects.append(
                    outcome_effect(
                        new.task_id,
                        "rejected",
                        "policy",
                        now,
                        agent=new.agent,
                        escalation_id=new.id,
                        task_type=new.task_type,
                    )
                )
            return Change(
                action=AuditAction.APPROVE if approved else AuditAction.REJECT,
                event="decided",
                message=f"The policy {new.decided} escalation {new.id} ({new.task_id}).",
                task_id=new.task_id,
                escalation_id=new.id,
                reason=decision.why,
                state=record.agent_state,
                detail={
                    "outcome": new.decided,
                    "rule": decision.rule,
                    "route": evaluation.route_label,
                    "review_sample": review_rate or None,
                },
                effects=effects,
                escalation=record,
            )

        try:
            result = self._perform("policy", "operator", "decide", build, escalation_id=new.id)
        except _Raced:  # the same id again: an agent asking again after a restart
            with self.store.reading() as session:
                existing = self._existing(session, new.id)
            self._redeliver_decision(existing)
            return existing, False
        except ControlPlaneUnavailable as exc:  # decided and recorded; reconcile writes it
            if not isinstance(exc.result, ActionResult) or exc.result.escalation is None:
                raise
            return exc.result.escalation, True
        assert result.escalation is not None
        return result.escalation, True

    def _redeliver_decision(self, escalation: EscalationRecord) -> None:
        """The same escalation again (an agent restarted, asking again): if it was decided
        and Redis has lost `decision:{id}` (restart, TTL), write it back so the agent gets
        its answer instead of waiting out its timeout. Best effort: Redis may be down."""
        if escalation.is_open:
            return
        with contextlib.suppress(ControlPlaneError):
            self.control.ensure(
                [
                    Effect(
                        "decision",
                        escalation.id,
                        "set",
                        decision_value(escalation, self._agent_args(escalation)),
                    )
                ]
            )

    def acknowledge(self, escalation_id: str, actor: str) -> ActionResult:
        ids.check_escalation_id(escalation_id)

        def build(session: Session, now: datetime) -> Change:
            acknowledged = escalations.acknowledge(session, escalation_id, actor, now)
            if acknowledged is None:
                current = self._existing(session, escalation_id)
                if current.state == "acknowledged":
                    raise NothingChanged(
                        f"escalation {escalation_id} was already acknowledged by "
                        f"{current.acknowledged_by} at {iso(current.acknowledged_at or now)}"
                    )
                raise already_decided(current)
            return Change(
                action=AuditAction.ACKNOWLEDGE,
                event="acknowledged",
                message=f"Acknowledged escalation {escalation_id} ({acknowledged.task_id}).",
                task_id=acknowledged.task_id,
                escalation_id=escalation_id,
                state=acknowledged.agent_state,
                escalation=acknowledged,
            )

        return self._perform(actor, "operator", "acknowledge", build, escalation_id=escalation_id)
