"""The one path every action takes: check the actor's role, write its audit row (refusals
too, as `denied`), then its Redis effect, all inside one database transaction.

Effects reach Redis in the order the database serialises them, and a Redis failure is
recorded in the same commit as the action (a `redis_failed` row and a pending effect that
reconcile replays). The service's parts (escalations, overrides, the sweep…) build a
`Change` inside that transaction and hand it to `perform`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from bot import ids
from bot.authz import Authorizer, GroupDirectory
from bot.clock import Clock, iso, utcnow
from bot.contracts import ControlValue, DecisionValue, InboxEntry, OutcomeEntry
from bot.control import DECISION_TTL_SECONDS, ControlPlane, ControlPlaneError, Effect
from bot.core.events import Listener, ServiceEvent
from bot.db import audit, escalations, upkeep
from bot.db.store import Store
from bot.errors import (
    AlreadyDecided,
    ControlPlaneUnavailable,
    InvalidInput,
    NotAllowed,
    UnknownEscalation,
)
from bot.fleet import Fleet
from bot.logs import log_ids
from bot.policy import Policy, PolicyHolder, Role, holder_of
from bot.records import (
    ActionResult,
    AuditAction,
    AuditRecord,
    ControlRecord,
    EscalationRecord,
)

log = logging.getLogger("bot.service")

MAX_TEXT = 10_000
NO_REASON = "no reason given"
InboxKind = Literal["redirect", "message", "restart"]
EndStatus = Literal["terminated", "abandoned", "expired", "rejected"]
# What the end user is told when the bot ends a task (the `outcomes` entry's notice).
NOTICES: dict[str, str] = {
    "terminated": "Your request was stopped by our team and will not be completed.",
    "abandoned": "Your request could not be completed and has been closed.",
    "expired": "Your request could not be completed: no decision was made in time.",
    "rejected": "Your request was declined under our policy and was not carried out.",
}


@dataclass
class Change:
    """What an action will record and write, built inside its transaction."""

    action: AuditAction
    message: str
    event: str
    task_id: str | None = None
    escalation_id: str | None = None
    reason: str | None = None
    state: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None
    effects: list[Effect] = field(default_factory=list)
    escalation: EscalationRecord | None = None
    control: ControlRecord | None = None
    # Set when the build wrote its audit row itself, in one statement with its change.
    audited: AuditRecord | None = None


Build = Callable[[Session, datetime], Change]


def checked_text(value: str | None, what: str, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} is {len(text)} characters long (at most {MAX_TEXT})")
    return text


def control_value(control: ControlRecord) -> dict[str, Any]:
    return ControlValue(
        reason=control.reason,
        by=control.set_by,
        at=iso(control.set_at),
        escalation_id=control.escalation_id,
    ).model_dump()


def decision_value(
    escalation: EscalationRecord, args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`args`: the edited arguments as the agent must see them (its own values behind
    the placeholders); the stored ones by default."""
    approved = escalation.state == "approved"
    quorum = escalation.approvals_needed > 1
    return DecisionValue(
        decision=escalation.state,
        by=escalation.decided_by or "system",
        at=iso(escalation.decided_at or escalation.created_at),
        comment=escalation.comment,
        instruction=escalation.instruction,
        rule=escalation.decision_rule,
        args=(args if args is not None else escalation.edited_args) if approved else None,
        approvals=list(escalation.approvals) if approved and quorum else None,
    ).value()


def decision_rewrite(
    escalation: EscalationRecord, now: datetime, args: dict[str, Any] | None = None
) -> Effect | None:
    """`decision:{id}` written again (after Redis lost it) for what is left of its life,
    which runs from the decision; None once that life is over."""
    decided = escalation.decided_at or escalation.created_at
    left = int(DECISION_TTL_SECONDS - (now - decided).total_seconds())
    if left <= 0:
        return None
    value = decision_value(escalation, args)
    return Effect("decision", escalation.id, "set", value, ttl=left)


def inbox_effect(
    task_id: str,
    kind: InboxKind,
    text: str,
    author: str,
    now: datetime,
    escalation_id: str | None,
) -> Effect:
    entry = InboxEntry(
        kind=kind,
        text=text,
        author=author,
        source="operator",
        at=iso(now),
        escalation_id=escalation_id or "",
    )
    return Effect("inbox", task_id, "append", entry.model_dump())


def outcome_effect(
    task_id: str,
    status: EndStatus,
    by: str,
    now: datetime,
    *,
    agent: str | None,
    escalation_id: str | None = None,
    notice: str | None = None,
    task_type: str | None = None,
) -> Effect:
    """The `outcomes` entry of a task the bot ended (CONTRACTS §11). Its target is the
    entry's own id, which the control plane writes at most once, so a replay after a
    crash never adds it twice."""
    entry = OutcomeEntry(
        task_id=task_id,
        agent=agent or "unknown",
        status=status,
        notice=notice or NOTICES[status],
        by=by,
        escalation_id=escalation_id or "",
        at=iso(now),
        source="bot",
        task_type=task_type or "",
    )
    return Effect("outcome", ids.new_escalation_id(), "append", entry.model_dump())


def already_decided(escalation: EscalationRecord) -> AlreadyDecided:
    at = iso(escalation.decided_at) if escalation.decided_at else None
    return AlreadyDecided(escalation.id, escalation.state, escalation.decided_by, at)


class ServiceBase:
    """What every part of the service shares: its collaborators and the action path."""

    def __init__(
        self,
        store: Store,
        control: ControlPlane,
        policy: Policy | PolicyHolder,
        *,
        directory: GroupDirectory | None = None,
        clock: Clock = utcnow,
        listeners: Sequence[Listener] = (),
        paging: bool = False,
    ) -> None:
        self.store = store
        self.paging = paging
        self.control = control
        self.policies = holder_of(policy)
        self.authz = Authorizer(self.policies, directory)
        self.fleet = Fleet(control.client, control.keys)
        self.clock = clock
        self.listeners: list[Listener] = list(listeners)

    @property
    def policy(self) -> Policy:
        """The policy in force now (a reload may swap it between two calls)."""
        return self.policies.current

    def check_may(
        self,
        actor: str,
        role: Role,
        attempted: str,
        *,
        task_id: str | None = None,
        escalation_id: str | None = None,
    ) -> None:
        """Refuse now, before a person starts on something only `role` may finish (a form
        that leads to a decision): the same check and `denied` row as the action's own,
        raised as NotAllowed. Changes nothing when allowed; the action checks again."""
        verdict = self.authz.check(actor, role)
        if not verdict.allowed:
            self._deny(actor, attempted, verdict.why, task_id, escalation_id)

    def _perform(
        self,
        actor: str,
        role: Role,
        attempted: str,
        build: Build,
        *,
        task_id: str | None = None,
        escalation_id: str | None = None,
    ) -> ActionResult:
        verdict = self.authz.check(actor, role)
        if not verdict.allowed:
            self._deny(actor, attempted, verdict.why, task_id, escalation_id)
        failure: str | None = None
        with self.store.transaction() as session:
            now = self.clock()
            change = build(session, now)
            record = change.audited or audit.append(
                session,
                at=now,
                actor=actor,
                action=change.action,
                policy_version=self.policy.version,
                task_id=change.task_id,
                escalation_id=change.escalation_id,
                reason=change.reason,
                state=change.state,
                detail=self._noted(change.detail),
            )
            try:
                keys = self.control.apply(change.effects)
            except ControlPlaneError as exc:
                failure = str(exc)
                keys = []
                self._record_failure(
                    session,
                    now,
                    change.effects,
                    failure,
                    task_id=change.task_id,
                    escalation_id=change.escalation_id,
                    for_seq=record.seq,
                )
        result = ActionResult(
            action=change.action,
            message=change.message,
            audit_seq=record.seq,
            escalation=change.escalation,
            control=change.control,
            keys=tuple(keys),
        )
        self._emit(
            ServiceEvent(
                change.event,
                actor,
                change.task_id,
                change.escalation_id,
                result,
                escalation=change.escalation,
                audit=record,
            )
        )
        if failure is not None:
            raise ControlPlaneUnavailable(
                f"Audit row {record.seq} ({change.action}) is recorded, but Redis could not "
                f"be written ({failure}): {self._pending(change.effects)} when Redis is back; "
                "agents do not see it until then.",
                result,
            )
        return result

    def _pending(self, effects: Sequence[Effect]) -> str:
        """What Redis is still owed, e.g. `kill:t1 will be set`."""
        words = {
            "set": "will be set",
            "delete": "will be removed",
            "append": "will get the entry",
            "expire": "will be given its expiry",
        }
        owed = [f"{self.control.key_of(e)} {words[e.op]}" for e in effects]
        return ", ".join(owed) or "nothing"

    def _noted(self, detail: dict[str, Any] | None) -> dict[str, Any] | None:
        """An audit row's detail, saying why when the policy was unavailable (break-glass)."""
        why = self.policy.unavailable
        return detail if why is None else {**(detail or {}), "policy_unavailable": why}

    def _record_failure(
        self,
        session: Session,
        now: datetime,
        effects: Sequence[Effect],
        error: str,
        *,
        task_id: str | None,
        escalation_id: str | None,
        for_seq: int,
    ) -> None:
        upkeep.add_pending_effects(
            session,
            [(e.kind, e.target, e.value if e.op == "append" else None) for e in effects],
            error,
            now,
        )
        audit.append(
            session,
            at=now,
            actor="system",
            action=AuditAction.REDIS_FAILED,
            policy_version=self.policy.version,
            task_id=task_id,
            escalation_id=escalation_id,
            reason=f"Redis unreachable: {error}; kept in the database, written when Redis is back",
            detail=self._noted(
                {"for_seq": for_seq, "keys": [self.control.key_of(e) for e in effects]}
            ),
        )

    def _deny(
        self,
        actor: str,
        attempted: str,
        why: str,
        task_id: str | None,
        escalation_id: str | None,
    ) -> None:
        with self.store.transaction() as session:
            if escalation_id is not None and task_id is None:
                task_id = escalations.task_of(session, escalation_id)
            audit.append(
                session,
                at=self.clock(),
                actor=actor,
                action=AuditAction.DENIED,
                policy_version=self.policy.version,
                task_id=task_id,
                escalation_id=escalation_id,
                reason=f"{attempted} {why}",
                detail=self._noted({"attempted": attempted}),
            )
        raise NotAllowed(f"not allowed: {attempted} {why}")

    @staticmethod
    def _existing(session: Session, escalation_id: str) -> EscalationRecord:
        found = escalations.find(session, escalation_id)
        if found is None:
            raise UnknownEscalation(f"unknown escalation {escalation_id!r}")
        return found

    def _emit(self, event: ServiceEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception(
                    "listener %r failed on %s",
                    listener,
                    event.kind,
                    extra=log_ids(
                        escalation_id=event.escalation_id, task_id=event.task_id, actor=event.actor
                    ),
                )
