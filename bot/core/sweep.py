"""The sweep's tier work: an open escalation whose tier time is up climbs to the next
tier, or, at the last, expires as `on_final_timeout` says. Time-driven triggers belong
here too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot import ids
from bot.clock import iso
from bot.contracts import DecisionValue
from bot.control import ControlPlaneError, Effect
from bot.core.base import (
    MAX_TEXT,
    Change,
    ServiceBase,
    already_decided,
    checked_text,
    control_value,
    outcome_effect,
)
from bot.core.events import ServiceEvent
from bot.db import audit, cards, controls, escalations, firings, tiers
from bot.db.cards import NewCard
from bot.db.firings import release_effects
from bot.db.tiers import Climb
from bot.errors import NothingChanged
from bot.policy import Tier, format_duration
from bot.records import ActionResult, AuditAction, EscalationRecord

SWEEP_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class SweepReport:
    climbed: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()


@dataclass
class _Plan:
    climbs: list[Climb] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    expiries: list[str] = field(default_factory=list)
    cards: list[NewCard] = field(default_factory=list)
    audit: list[audit.Entry] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


class Sweep(ServiceBase):
    def escalate_due(self, *, owner: str = "sweep", limit: int = 500) -> SweepReport:
        """Climb or expire every escalation that is due: one transaction for the whole
        batch, so the time it takes follows the number due, and a crash loses or doubles
        nothing."""
        now = self.clock()
        with self.store.transaction() as session:
            due = tiers.claim_due(session, now, limit, owner, SWEEP_LEASE)
            if not due:
                return SweepReport()
            plan = _Plan()
            # A clock that should have stopped (decided meanwhile): stop it.
            tiers.stop_clock(session, [e.id for e in due if e.state != "open"])
            for escalation in due:
                if escalation.state != "open":
                    continue
                following = self.policy.next_tier(escalation.tier, escalation.ladder)
                if following is None:
                    self._plan_expiry(session, plan, escalation, now)
                else:
                    self._plan_climb(plan, escalation, following, now)
            self._apply_climbs(session, plan, now)
            tiers.expire(session, plan.expiries, now)
            plan.effects += release_effects(
                firings.release_decided(session, plan.expiries, "policy", now)
            )
            records = audit.append_many(session, plan.audit)
            try:
                self.control.apply(plan.effects)
            except ControlPlaneError as exc:
                self._record_failure(
                    session,
                    now,
                    plan.effects,
                    str(exc),
                    task_id=None,
                    escalation_id=None,
                    for_seq=records[-1].seq,
                )
        before = {e.id: e for e in due}
        for record in records:
            kind = "escalated" if record.action == AuditAction.ESCALATE else "expired"
            self._emit(
                ServiceEvent(
                    kind,
                    "policy",
                    record.task_id,
                    record.escalation_id,
                    escalation=before.get(record.escalation_id or ""),
                    audit=record,
                )
            )
        return SweepReport(
            climbed=tuple(climb.escalation_id for climb in plan.climbs),
            expired=tuple(plan.expiries),
        )

    def sweep_tiers(self, *, owner: str = "sweep", batch: int = 500) -> tuple[int, int]:
        """All that is due, in batches: (climbed, expired)."""
        climbed = expired = 0
        while True:
            report = self.escalate_due(owner=owner, limit=batch)
            climbed += len(report.climbed)
            expired += len(report.expired)
            if len(report.climbed) + len(report.expired) < batch:
                return climbed, expired

    def escalate_now(
        self, escalation_id: str, actor: str, reason: str | None = None
    ) -> ActionResult:
        """Move an escalation to the next tier of its ladder at once, through the same
        climb as the sweep's (its card there, its page)."""
        ids.check_escalation_id(escalation_id)
        reason = checked_text(reason, "the reason", required=False)

        def build(session: Session, now: datetime) -> Change:
            current = escalations.lock(session, escalation_id)
            if current is None:
                current = self._existing(session, escalation_id)  # raises UnknownEscalation
            if not current.is_open:
                raise already_decided(current)
            following = self.policy.next_tier(current.tier, current.ladder)
            if following is None:
                raise NothingChanged(
                    f"escalation {escalation_id} is at the last tier of its ladder "
                    f"({current.tier}): there is no tier to escalate it to"
                )
            plan = _Plan()
            pages = self._climb_steps(plan, current, following, now)
            self._apply_climbs(session, plan, now)
            paged = " PagerDuty is paged." if pages else ""
            return Change(
                action=AuditAction.ESCALATE,
                event="escalated",
                message=(
                    f"Escalated {escalation_id} ({current.task_id}) to {following.name}.{paged}"
                ),
                task_id=current.task_id,
                escalation_id=escalation_id,
                reason=reason or f"escalated to {following.name} at once",
                state=current.agent_state,
                detail={
                    "from": current.tier,
                    "to": following.name,
                    "pages": pages,
                    "at_once": True,
                },
                escalation=escalations.find(session, escalation_id),
            )

        return self._perform(actor, "operator", "escalate", build, escalation_id=escalation_id)

    @staticmethod
    def _apply_climbs(session: Session, plan: _Plan, now: datetime) -> None:
        cards.supersede_cards(session, [card.escalation_id for card in plan.cards])
        cards.add_cards(session, plan.cards, now)
        tiers.climb(session, plan.climbs, now)
        escalations.owe_pages(session, plan.pages, now)

    def _climb_steps(
        self, plan: _Plan, escalation: EscalationRecord, following: Tier, now: datetime
    ) -> bool:
        """The climb of one escalation to `following`: its new deadline, its card there,
        its page; True when it pages."""
        pages = bool(following.page and self.paging and escalation.page_wanted is None)
        # The deadline the escalation was given at intake (its severity's) wins over the
        # tier's own, even if the policy changed since.
        deadline = escalation.ack_timeout or following.ack_timeout
        # It runs from the new card's posting; until then, from now plus the time a card
        # may take to be posted (so a card Slack never takes still climbs).
        grace = self.policy.delivery.unposted_grace
        plan.climbs.append(Climb(escalation.id, following.name, now + deadline + grace))
        if pages:
            plan.pages.append(escalation.id)
        plan.cards.append(
            NewCard(escalation.id, following.name, following.channel, escalation.severity)
        )
        return pages

    def _plan_climb(
        self, plan: _Plan, escalation: EscalationRecord, following: Tier, now: datetime
    ) -> None:
        pages = self._climb_steps(plan, escalation, following, now)
        try:
            tier = self.policy.tier(escalation.tier, escalation.ladder)
            waited = format_duration(escalation.ack_timeout or tier.ack_timeout)
        except KeyError:  # a tier the policy no longer has
            waited = format_duration(now - (escalation.tier_entered_at or escalation.created_at))
        plan.audit.append(
            self._audit_row(
                escalation,
                now,
                AuditAction.ESCALATE,
                f"not acknowledged within {waited} in {escalation.tier}: "
                f"escalated to {following.name}",
                {"from": escalation.tier, "to": following.name, "pages": bool(pages)},
            )
        )

    def _plan_expiry(
        self, session: Session, plan: _Plan, escalation: EscalationRecord, now: datetime
    ) -> None:
        final = self.policy.on_final_timeout
        plan.expiries.append(escalation.id)
        plan.effects.append(
            outcome_effect(
                escalation.task_id,
                "expired",
                "policy",
                now,
                agent=escalation.agent,
                escalation_id=escalation.id,
                task_type=escalation.task_type,
            )
        )
        plan.audit.append(
            self._audit_row(
                escalation,
                now,
                AuditAction.EXPIRE,
                f"not decided in time at the last tier ({escalation.tier}); "
                f"on_final_timeout: {final}",
                {"on_final_timeout": final, "outcome": "expired"},
            )
        )
        if final in ("reject", "terminate"):
            value = DecisionValue(decision="expired", by="policy", at=iso(now)).value()
            plan.effects.append(Effect("decision", escalation.id, "set", value))
            plan.effects.append(Effect("redaction", escalation.id, "expire"))
        if final == "terminate":
            killed = controls.activate(
                session,
                kind="kill",
                target=escalation.task_id,
                reason=f"expired: {escalation.reason}"[:MAX_TEXT],
                by="policy",
                at=now,
                escalation_id=escalation.id,
            )
            if killed is not None:
                plan.effects.append(
                    Effect("kill", escalation.task_id, "set", control_value(killed))
                )

    def _audit_row(
        self,
        escalation: EscalationRecord,
        now: datetime,
        action: AuditAction,
        reason: str,
        detail: dict[str, Any],
    ) -> audit.Entry:
        return audit.Entry(
            at=now,
            actor="policy",
            action=action,
            policy_version=self.policy.version,
            task_id=escalation.task_id,
            escalation_id=escalation.id,
            reason=reason,
            state=escalation.agent_state,
            detail=detail,
        )
