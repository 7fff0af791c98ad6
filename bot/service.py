"""The escalation service: the one path that every way in (Slack, stream, sweep, CLI) uses.

Each action checks the actor's role, writes its audit row (refusals too, as `denied`),
then its Redis effect, all inside one database transaction: effects reach Redis in the
order the database serialises them, and a Redis failure is recorded in the same commit
as the action (a `redis_failed` row and a pending effect that `reconcile()` replays).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot import ids
from bot.authz import Authorizer, GroupDirectory
from bot.clock import Clock, iso, utcnow
from bot.contracts import (
    OUTCOME_OF,
    ControlValue,
    DecisionValue,
    Escalation,
    InboxEntry,
    Verdict,
)
from bot.control import ControlPlane, ControlPlaneError, Effect
from bot.db import audit, queries
from bot.db.models import CardRow, ControlRow, EscalationRow, PendingEffectRow, RejectedEntryRow
from bot.db.store import Store
from bot.errors import (
    AlreadyDecided,
    ControlPlaneUnavailable,
    InvalidInput,
    NotAllowed,
    NothingChanged,
    UnknownEscalation,
    UnknownTask,
)
from bot.keys import ALL
from bot.policy import Policy, Role, Tier
from bot.views import (
    OPEN_STATES,
    ActionResult,
    EscalationView,
    Overview,
    TaskStatus,
)

log = logging.getLogger(__name__)

REVIVE_ALL_WINDOW = timedelta(minutes=10)
SWEEP_LEASE = timedelta(seconds=60)
PAGE_LEASE = timedelta(seconds=60)
PAGE_MAX_BACKOFF = timedelta(seconds=60)
MAX_TEXT = 10_000
NO_REASON = "no reason given"


@dataclass(frozen=True)
class ServiceEvent:
    """Told to listeners (the Slack notifier, the pager) after a change is committed."""

    kind: str
    actor: str
    task_id: str | None = None
    escalation_id: str | None = None
    result: ActionResult | None = None


Listener = Callable[[ServiceEvent], None]


@dataclass(frozen=True)
class SweepReport:
    climbed: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageJob:
    """A PagerDuty event an escalation owes: `action` is trigger, acknowledge or resolve;
    `sent` the last one PagerDuty took."""

    action: str
    sent: str | None
    escalation: EscalationView
    attempts: int = 0

    def events(self) -> tuple[str, ...]:
        """What to send, in order, to bring PagerDuty to `action`. A page that never
        landed owes nothing once a person took the escalation in Slack (nobody needs
        waking), but is still sent, then closed, when it ran out at the paging tier with
        nobody ever paged: PagerDuty's record then shows it went unanswered."""
        if self.action == "trigger" or self.sent is not None:
            return (self.action,)
        if self.escalation.state == "expired":
            return ("trigger", self.action)
        return ()


@dataclass
class _SweepPlan:
    climbs: list[dict[str, Any]] = field(default_factory=list)
    expiries: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@dataclass(frozen=True)
class ReconcileReport:
    restored: tuple[str, ...] = ()
    replayed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.restored or self.replayed)


@dataclass
class _Change:
    """What an action will record and write, built inside its transaction."""

    action: str
    message: str
    event: str
    task_id: str | None = None
    escalation_id: str | None = None
    reason: str | None = None
    state: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None
    effects: list[Effect] = field(default_factory=list)
    escalation: EscalationView | None = None
    control: Any = None


def _text(value: str | None, what: str, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} is {len(text)} characters long (at most {MAX_TEXT})")
    return text


def control_value(row: Any) -> dict[str, Any]:
    return ControlValue(
        reason=row.reason, by=row.set_by, at=iso(row.set_at), escalation_id=row.escalation_id
    ).model_dump()


def decision_value(row: Any) -> dict[str, Any]:
    return DecisionValue(
        decision=row.state,  # type: ignore[arg-type]
        by=row.decided_by or "system",
        at=iso(row.decided_at or row.created_at),
        comment=row.decision_comment,
        instruction=row.decision_instruction,
    ).model_dump()


class EscalationService:
    def __init__(
        self,
        store: Store,
        control: ControlPlane,
        policy: Policy,
        *,
        directory: GroupDirectory | None = None,
        clock: Clock = utcnow,
        listeners: Sequence[Listener] = (),
        paging: bool = False,
    ) -> None:
        self.store = store
        self.paging = paging
        self.control = control
        self.policy = policy
        self.authz = Authorizer(policy, directory)
        self.clock = clock
        self.listeners: list[Listener] = list(listeners)

    # ------------------------------------------------------------------ escalations

    def open_escalation(self, escalation: Escalation) -> tuple[EscalationView, bool]:
        """Open it (or find it: the id is the idempotency key). True when newly opened."""
        try:
            tier = self.policy.tier(escalation.tier)
        except KeyError:
            names = ", ".join(self.policy.tier_names())
            raise InvalidInput(f"unknown tier {escalation.tier!r} (tiers: {names})") from None
        escalation_id = escalation.escalation_id or ids.new_escalation_id()
        payload = escalation.model_dump(mode="json") | {"escalation_id": escalation_id}
        now = self.clock()
        with self.store.transaction() as session:
            existing = queries.load_escalation(session, escalation_id)
            if existing is not None:
                self._redeliver_decision(session, escalation_id)
                return existing, False
            row = EscalationRow(
                id=escalation_id,
                task_id=escalation.task_id,
                agent=escalation.agent,
                task_type=escalation.task_type,
                kind=escalation.kind,
                severity=escalation.severity,
                confidence=escalation.confidence,
                reason=escalation.reason,
                payload=payload,
                state="open",
                tier=tier.name,
                tier_entered_at=now,
                created_at=now,
                policy_version=self.policy.version,
                next_action_at=now + tier.ack_timeout,
                page_wanted="trigger" if self.paging and tier.page else None,
                page_next_attempt_at=now if self.paging and tier.page else None,
                page_attempts=0,
            )
            card = CardRow(
                escalation_id=escalation_id,
                tier=tier.name,
                channel=tier.channel,
                superseded=False,
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
            created = queries.insert_escalation(session, row, card)
        with self.store.reading() as session:
            view = queries.load_escalation(session, escalation_id)
        assert view is not None
        if created:
            self._emit(ServiceEvent("opened", f"agent:{view.agent}", view.task_id, view.id))
        return view, created

    def _redeliver_decision(self, session: Session, escalation_id: str) -> None:
        """The same escalation again (an agent restarted, asking again): if it was decided
        and Redis has lost `decision:{id}` (restart, TTL), write it back so the agent gets
        its answer instead of waiting out its timeout. Best effort: Redis may be down."""
        row = queries.escalation_row(session, escalation_id)
        if row is None or row.state in OPEN_STATES:
            return
        with contextlib.suppress(ControlPlaneError):
            self.control.ensure([Effect("decision", escalation_id, "set", decision_value(row))])

    def get_escalation(self, escalation_id: str) -> EscalationView:
        ids.check_escalation_id(escalation_id)
        with self.store.reading() as session:
            view = queries.load_escalation(session, escalation_id)
        if view is None:
            raise UnknownEscalation(f"unknown escalation {escalation_id!r}")
        return view

    def acknowledge(self, escalation_id: str, actor: str) -> ActionResult:
        ids.check_escalation_id(escalation_id)

        def build(session: Session, now: datetime) -> _Change:
            row = queries.acknowledge(session, escalation_id, actor, now)
            if row is None:
                current = self._escalation_row(session, escalation_id)
                if current.state == "acknowledged":
                    raise NothingChanged(
                        f"escalation {escalation_id} was already acknowledged by "
                        f"{current.acknowledged_by} at {iso(current.acknowledged_at or now)}"
                    )
                raise self._already_decided(current)
            return _Change(
                action="acknowledge",
                event="acknowledged",
                message=f"Acknowledged escalation {escalation_id} ({row.task_id}).",
                task_id=row.task_id,
                escalation_id=escalation_id,
                state=self._agent_state(row),
                escalation=self._view(session, row),
            )

        return self._perform(actor, "operator", "acknowledge", build, escalation_id=escalation_id)

    def decide(
        self,
        escalation_id: str,
        actor: str,
        verdict: Verdict,
        *,
        comment: str | None = None,
        instruction: str | None = None,
    ) -> ActionResult:
        ids.check_escalation_id(escalation_id)
        if verdict not in OUTCOME_OF:
            raise InvalidInput(f"unknown decision {verdict!r} (use {', '.join(OUTCOME_OF)})")
        comment = _text(comment, "the comment", required=False)
        instruction = _text(instruction, "the instruction", required=verdict == "redirect")
        outcome = OUTCOME_OF[verdict]

        def build(session: Session, now: datetime) -> _Change:
            row = queries.decide(
                session,
                escalation_id,
                outcome=outcome,
                by=actor,
                at=now,
                comment=comment,
                instruction=instruction,
            )
            if row is None:
                raise self._already_decided(self._escalation_row(session, escalation_id))
            effects = [Effect("decision", escalation_id, "set", decision_value(row))]
            message = f"{outcome.capitalize()} escalation {escalation_id} ({row.task_id})."
            if verdict == "terminate":
                kill_row = queries.activate_control(
                    session,
                    kind="kill",
                    target=row.task_id,
                    reason=f"terminated: {row.reason}"[:MAX_TEXT],
                    by=actor,
                    at=now,
                    escalation_id=escalation_id,
                )
                if kill_row is not None:
                    effects.append(Effect("kill", row.task_id, "set", control_value(kill_row)))
                message += f" {row.task_id} is killed."
            if verdict == "redirect":
                effects.append(
                    self._inbox_effect(
                        row.task_id, "redirect", instruction or "", actor, now, escalation_id
                    )
                )
            return _Change(
                action=verdict,
                event="decided",
                message=message,
                task_id=row.task_id,
                escalation_id=escalation_id,
                reason=comment or instruction,
                state=self._agent_state(row),
                detail={"outcome": outcome},
                effects=effects,
                escalation=self._view(session, row),
            )

        return self._perform(actor, "operator", verdict, build, escalation_id=escalation_id)

    # ------------------------------------------------------------------ overrides

    def kill(
        self,
        task_id: str,
        actor: str,
        reason: str | None = None,
        *,
        escalation_id: str | None = None,
    ) -> ActionResult:
        ids.check_task_id(task_id)
        return self._activate("kill", task_id, actor, reason, escalation_id, role="operator")

    def kill_all(self, actor: str, reason: str | None = None) -> ActionResult:
        return self._activate("kill", ALL, actor, reason, None, role="admin")

    def pause(self, task_id: str, actor: str, reason: str | None = None) -> ActionResult:
        ids.check_task_id(task_id)
        return self._activate("pause", task_id, actor, reason, None, role="operator")

    def revive(self, task_id: str, actor: str) -> ActionResult:
        ids.check_task_id(task_id)
        return self._lift("kill", task_id, actor)

    def resume(self, task_id: str, actor: str) -> ActionResult:
        ids.check_task_id(task_id)
        return self._lift("pause", task_id, actor)

    def revive_all(self, actor: str) -> ActionResult:
        """The first admin asks; a second, different admin confirms; only then is it lifted."""

        def build(session: Session, now: datetime) -> _Change:
            row = queries.lock_control(session, "kill", ALL)
            if row is None or not row.active:
                raise NothingChanged("kill all is not active: there is nothing to revive")
            requested_by = row.revive_requested_by
            fresh = (
                requested_by is not None
                and row.revive_requested_at is not None
                and now - row.revive_requested_at <= REVIVE_ALL_WINDOW
            )
            if fresh and requested_by == actor:
                raise NothingChanged(
                    "you already asked to revive all: a second, different admin must confirm"
                )
            if not fresh:
                row.revive_requested_by = actor
                row.revive_requested_at = now
                minutes = int(REVIVE_ALL_WINDOW.total_seconds() // 60)
                return _Change(
                    action="revive",
                    event="revive_all_requested",
                    message=(
                        f"Revive all requested by {actor}. kill:all stays until a second, "
                        f"different admin confirms within {minutes} minutes "
                        "(`revive all` again)."
                    ),
                    task_id=ALL,
                    detail={"target": ALL, "step": "requested"},
                    control=row,
                )
            row.active = False
            row.lifted_by = actor
            row.lifted_at = now
            return _Change(
                action="revive",
                event="revived_all",
                message=(
                    f"Revived all tasks: kill:all is removed "
                    f"(asked by {requested_by}, confirmed by {actor})."
                ),
                task_id=ALL,
                detail={"target": ALL, "step": "confirmed", "requested_by": requested_by},
                effects=[Effect("kill", ALL, "delete")],
                control=row,
            )

        return self._perform(actor, "admin", "revive all", build, task_id=ALL)

    def redirect(
        self, task_id: str, actor: str, instruction: str, *, escalation_id: str | None = None
    ) -> ActionResult:
        ids.check_task_id(task_id)
        text = _text(instruction, "the instruction", required=True) or ""
        return self._to_inbox("redirect", task_id, actor, text, escalation_id)

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
        body = _text(text, "the message", required=True) or ""
        return self._to_inbox("message", task_id, actor, body, escalation_id, idempotency_key)

    # ------------------------------------------------------------------ reading

    def status(self, task_id: str) -> TaskStatus:
        ids.check_task_id(task_id)
        with self.store.reading() as session:
            if not queries.task_is_known(session, task_id):
                raise UnknownTask(
                    f"unknown task {task_id!r}: no escalations, kills, pauses or audit rows"
                )
            controls = queries.controls_for(session, task_id)

            def active(key: str) -> Any:
                row = controls.get(key)
                return queries.control_view(row) if row is not None and row.active else None

            return TaskStatus(
                task_id=task_id,
                killed=active(f"kill:{task_id}"),
                killed_all=active(f"kill:{ALL}"),
                paused=active(f"pause:{task_id}"),
                escalations=tuple(queries.escalations_for_task(session, task_id)),
                recent=tuple(queries.recent_audit(session, task_id)),
            )

    def overview(self) -> Overview:
        with self.store.reading() as session:
            return Overview(
                open_escalations=tuple(queries.open_escalations(session)),
                controls=tuple(
                    queries.control_view(row) for row in queries.active_controls(session)
                ),
                rejected=tuple(queries.recent_rejected(session)),
                pending_effects=queries.pending_effect_count(session),
            )

    # ------------------------------------------------------------------ upkeep

    def record_rejected_entry(self, stream_id: str, raw: str, reason: str) -> None:
        with self.store.transaction() as session:
            session.add(
                RejectedEntryRow(
                    stream_id=stream_id, received_at=self.clock(), reason=reason, raw=raw[:20_000]
                )
            )

    def reconcile(self) -> ReconcileReport:
        """Write the database's truth back into Redis: every active kill and pause, and any
        change Redis refused earlier. Raises ControlPlaneError while Redis is down.

        Runs every sweep, so the common case (nothing lost) takes no write lock: the
        active controls are read, and Redis sets only the keys it lacks (SET NX). Only
        when something was restored or is pending does it write, under the lock, and
        first undo a restore that raced with a revive or resume."""
        with self.store.reading() as session:
            active = [
                Effect(row.kind, row.target, "set", control_value(row))
                for row in queries.active_controls(session)
            ]
            pending = queries.pending_effect_count(session)
        restored = self.control.ensure(active)
        if not restored and not pending:
            return ReconcileReport()
        now = self.clock()
        with self.store.transaction() as session:
            stale = [
                effect
                for effect in active
                if self.control.key_of(effect) in restored
                and not queries.is_active(session, effect.kind, effect.target)
            ]
            self.control.apply([Effect(e.kind, e.target, "delete") for e in stale])
            restored = [k for k in restored if k not in {self.control.key_of(e) for e in stale}]
            replays: dict[tuple[str, str], Effect] = {}
            appends: list[Effect] = []
            items = queries.pending_effects(session)
            for item in items:
                effect = self._replay(session, item)
                if effect is None:
                    continue
                if effect.op == "append":
                    appends.append(effect)
                else:
                    replays[(effect.kind, effect.target)] = effect
            replayed = self.control.apply([*replays.values(), *appends])
            for item in items:
                session.delete(item)
            if restored or replayed:
                audit.append(
                    session,
                    at=now,
                    actor="system",
                    action="redis_restored",
                    policy_version=self.policy.version,
                    reason=f"wrote {len(restored) + len(replayed)} key(s) back into Redis",
                    detail={"restored": restored[:100], "replayed": replayed[:100]},
                )
        return ReconcileReport(tuple(restored), tuple(replayed))

    # ------------------------------------------------------------------ the sweep

    def escalate_due(self, *, owner: str = "sweep", limit: int = 500) -> SweepReport:
        """Every open escalation whose tier time is up climbs to the next tier, or, at the
        last, expires as `on_final_timeout` says: one transaction for the whole batch, so
        the time it takes follows the number due, and a crash loses or doubles nothing."""
        now = self.clock()
        with self.store.transaction() as session:
            rows = queries.claim_due(session, now, limit, owner, SWEEP_LEASE)
            if not rows:
                return SweepReport()
            plan = _SweepPlan()
            stray = [row.id for row in rows if row.state != "open"]
            queries.stop_clock(session, stray)  # a clock that should have stopped: stop it
            for row in rows:
                if row.state != "open":
                    continue
                following = self.policy.next_tier(row.tier)
                if following is None:
                    self._plan_expiry(session, plan, row, now)
                else:
                    self._plan_climb(plan, row, following, now)
            queries.supersede_cards(session, [card["escalation_id"] for card in plan.cards])
            queries.add_cards(session, plan.cards)
            queries.climb(session, plan.climbs)
            queries.expire(session, plan.expiries)
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
        for record in records:
            kind = "escalated" if record.action == "escalate" else "expired"
            self._emit(ServiceEvent(kind, "policy", record.task_id, record.escalation_id))
        return SweepReport(
            climbed=tuple(c["p_id"] for c in plan.climbs),
            expired=tuple(e["p_id"] for e in plan.expiries),
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

    def _plan_climb(self, plan: _SweepPlan, row: Any, following: Tier, now: datetime) -> None:
        pages = following.page and self.paging and row.page_wanted is None
        plan.climbs.append(
            {
                "p_id": row.id,
                "p_tier": following.name,
                "p_at": now,
                "p_next": now + following.ack_timeout,
                "p_page_wanted": "trigger" if pages else row.page_wanted,
                "p_page_next": now if pages else row.page_next_attempt_at,
            }
        )
        plan.cards.append(
            {
                "escalation_id": row.id,
                "tier": following.name,
                "channel": following.channel,
                "superseded": False,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
            }
        )
        try:
            waited = _duration(self.policy.tier(row.tier).ack_timeout)
        except KeyError:  # a tier the policy no longer has
            waited = _duration(now - row.tier_entered_at)
        plan.audit.append(
            self._audit_row(
                row,
                now,
                "escalate",
                f"not acknowledged within {waited} in {row.tier}: escalated to {following.name}",
                {"from": row.tier, "to": following.name, "pages": bool(pages)},
            )
        )

    def _plan_expiry(self, session: Session, plan: _SweepPlan, row: Any, now: datetime) -> None:
        final = self.policy.on_final_timeout
        owes_page = row.page_wanted is not None
        plan.expiries.append(
            {
                "p_id": row.id,
                "p_at": now,
                "p_page_wanted": "resolve" if owes_page else None,
                "p_page_next": now if owes_page else None,
            }
        )
        plan.audit.append(
            self._audit_row(
                row,
                now,
                "expire",
                f"not decided in time at the last tier ({row.tier}); on_final_timeout: {final}",
                {"on_final_timeout": final, "outcome": "expired"},
            )
        )
        if final in ("reject", "terminate"):
            value = DecisionValue(decision="expired", by="policy", at=iso(now)).model_dump()
            plan.effects.append(Effect("decision", row.id, "set", value))
        if final == "terminate":
            killed = queries.activate_control(
                session,
                kind="kill",
                target=row.task_id,
                reason=f"expired: {row.reason}"[:MAX_TEXT],
                by="policy",
                at=now,
                escalation_id=row.id,
            )
            if killed is not None:
                plan.effects.append(Effect("kill", row.task_id, "set", control_value(killed)))

    def _audit_row(
        self, row: Any, now: datetime, action: str, reason: str, detail: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "at": now,
            "actor": "policy",
            "action": action,
            "task_id": row.task_id,
            "escalation_id": row.id,
            "reason": reason,
            "state": self._agent_state(row),
            "detail": detail,
            "policy_version": self.policy.version,
        }

    # ------------------------------------------------------------------ paging (outbox)

    def claim_pages(self, *, limit: int = 50) -> list[PageJob]:
        """PagerDuty events owed, claimed for a while so that a replica skips them."""
        now = self.clock()
        with self.store.transaction() as session:
            rows = queries.claim_pages(session, now, limit, PAGE_LEASE)
            return [
                PageJob(row.page_wanted, row.page_sent, self._view(session, row), row.page_attempts)
                for row in rows
                if row.page_wanted is not None
            ]

    def page_done(
        self,
        job: PageJob,
        *,
        error: str | None = None,
        skipped: bool = False,
        claimed: bool = False,
    ) -> None:
        """Record what became of `job`: sent, failed (`error`), or `skipped` (an acknowledge
        or resolve owed for a page that never landed: there is nothing to close). With
        `claimed`, the escalation stays claimed: a later event of the same job follows.
        The first failure of an event and every send are audited as `page`, which also
        redraws the card; later failures only move the next attempt back."""
        now = self.clock()
        view = job.escalation
        with self.store.transaction() as session:
            if error is None:
                queries.page_sent(session, view.id, job.action, release=not claimed)
                attempts = 0
            else:
                delay = min(PAGE_MAX_BACKOFF, timedelta(seconds=2 ** min(job.attempts, 6)))
                attempts = queries.page_failed(session, view.id, error, now + delay)
            if not skipped and (error is None or attempts == 1):
                audit.append(
                    session,
                    at=now,
                    actor="system",
                    action="page",
                    policy_version=self.policy.version,
                    task_id=view.task_id,
                    escalation_id=view.id,
                    reason=(
                        f"PagerDuty {job.action}: sent"
                        if error is None
                        else f"PagerDuty {job.action} failed: {error}; retrying"
                    ),
                    detail={"event_action": job.action, "ok": error is None, "dedup_key": view.id},
                )
        self._emit(ServiceEvent("paged", "system", view.task_id, view.id))

    # ------------------------------------------------------------------ internals

    def _activate(
        self,
        kind: str,
        target: str,
        actor: str,
        reason: str | None,
        escalation_id: str | None,
        *,
        role: Role,
    ) -> ActionResult:
        reason = _text(reason, "the reason", required=False) or NO_REASON
        if escalation_id is not None:
            ids.check_escalation_id(escalation_id)
        action = "kill_all" if target == ALL else kind
        attempted = "kill all" if target == ALL else kind

        def build(session: Session, now: datetime) -> _Change:
            row = queries.activate_control(
                session,
                kind=kind,
                target=target,
                reason=reason,
                by=actor,
                at=now,
                escalation_id=escalation_id,
            )
            if row is None:
                current = queries.current_control(session, kind, target)
                assert current is not None
                what = "all tasks are" if target == ALL else f"{target} is"
                state = "killed" if kind == "kill" else "paused"
                raise NothingChanged(
                    f"{what} already {state} (by {current.set_by} at {iso(current.set_at)}: "
                    f"{current.reason})"
                )
            key = self.control.key_of(Effect(kind, target, "set"))  # type: ignore[arg-type]
            if target == ALL:
                message = "Killed all tasks: kill:all is set; every agent stops at its next check."
            elif kind == "kill":
                message = f"Killed {target}: {key} is set; the agent stops at its next check."
            else:
                message = f"Paused {target}: {key} is set; the agent waits at its next check."
            return _Change(
                action=action,
                event="killed_all"
                if target == ALL
                else {"kill": "killed", "pause": "paused"}[kind],
                message=message,
                task_id=target,
                escalation_id=escalation_id,
                reason=reason,
                effects=[Effect(kind, target, "set", control_value(row))],  # type: ignore[arg-type]
                control=row,
            )

        return self._perform(
            actor, role, attempted, build, task_id=target, escalation_id=escalation_id
        )

    def _lift(self, kind: str, target: str, actor: str) -> ActionResult:
        action = "revive" if kind == "kill" else "resume"

        def build(session: Session, now: datetime) -> _Change:
            row = queries.lift_control(session, kind=kind, target=target, by=actor, at=now)
            if row is None:
                state = "killed" if kind == "kill" else "paused"
                hint = ""
                if kind == "kill":
                    everything = queries.current_control(session, "kill", ALL)
                    if everything is not None and everything.active:
                        hint = " (kill all is active: `revive all` lifts it)"
                raise NothingChanged(f"{target} is not {state}{hint}")
            verb = "Revived" if kind == "kill" else "Resumed"
            key = self.control.key_of(Effect(kind, target, "delete"))  # type: ignore[arg-type]
            return _Change(
                action=action,
                event="revived" if kind == "kill" else "resumed",
                message=f"{verb} {target}: {key} is removed.",
                task_id=target,
                escalation_id=row.escalation_id,
                effects=[Effect(kind, target, "delete")],  # type: ignore[arg-type]
                control=row,
            )

        return self._perform(actor, "operator", action, build, task_id=target)

    def _to_inbox(
        self,
        kind: str,
        task_id: str,
        actor: str,
        text: str,
        escalation_id: str | None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        if escalation_id is not None:
            ids.check_escalation_id(escalation_id)
        action = "redirect" if kind == "redirect" else "message"

        def build(session: Session, now: datetime) -> _Change:
            if idempotency_key is not None and not queries.claim_idempotency_key(
                session, idempotency_key, now
            ):
                raise NothingChanged(f"already delivered to {task_id}'s inbox")
            noun = "Redirect" if kind == "redirect" else "Message"
            return _Change(
                action=action,
                event="redirected" if kind == "redirect" else "messaged",
                message=f"{noun} delivered to {task_id}'s inbox.",
                task_id=task_id,
                escalation_id=escalation_id,
                reason=text,
                effects=[self._inbox_effect(task_id, kind, text, actor, now, escalation_id)],
            )

        return self._perform(
            actor, "operator", action, build, task_id=task_id, escalation_id=escalation_id
        )

    def _inbox_effect(
        self,
        task_id: str,
        kind: str,
        text: str,
        author: str,
        now: datetime,
        escalation_id: str | None,
    ) -> Effect:
        entry = InboxEntry(
            kind=kind,  # type: ignore[arg-type]
            text=text,
            author=author,
            source="operator",
            at=iso(now),
            escalation_id=escalation_id or "",
        )
        return Effect("inbox", task_id, "append", entry.model_dump())

    def _perform(
        self,
        actor: str,
        role: Role,
        attempted: str,
        build: Callable[[Session, datetime], _Change],
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
            record = audit.append(
                session,
                at=now,
                actor=actor,
                action=change.action,
                policy_version=self.policy.version,
                task_id=change.task_id,
                escalation_id=change.escalation_id,
                reason=change.reason,
                state=change.state,
                detail=change.detail,
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
            control = queries.control_view(change.control) if change.control else None
        result = ActionResult(
            action=change.action,
            message=change.message,
            audit_seq=record.seq,
            escalation=change.escalation,
            control=control,
            keys=tuple(keys),
        )
        self._emit(ServiceEvent(change.event, actor, change.task_id, change.escalation_id, result))
        if failure is not None:
            raise ControlPlaneUnavailable(
                f"{change.message} It is recorded, but Redis could not be written ({failure}): "
                "agents will not see it until Redis is back, when it is written automatically.",
                result,
            )
        return result

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
        for effect in effects:
            session.add(
                PendingEffectRow(
                    kind=effect.kind,
                    target=effect.target,
                    value=effect.value if effect.op == "append" else None,
                    created_at=now,
                    error=error,
                )
            )
        audit.append(
            session,
            at=now,
            actor="system",
            action="redis_failed",
            policy_version=self.policy.version,
            task_id=task_id,
            escalation_id=escalation_id,
            reason=f"Redis unreachable: {error}; kept in the database, written when Redis is back",
            detail={"for_seq": for_seq, "keys": [self.control.key_of(e) for e in effects]},
        )

    def _replay(self, session: Session, item: PendingEffectRow) -> Effect | None:
        if item.kind in ("kill", "pause"):
            row = session.get(ControlRow, (item.kind, item.target))
            if row is not None and row.active:
                return Effect(item.kind, item.target, "set", control_value(row))  # type: ignore[arg-type]
            return Effect(item.kind, item.target, "delete")  # type: ignore[arg-type]
        if item.kind == "decision":
            escalation = session.get(EscalationRow, item.target)
            if escalation is None or escalation.is_open:
                return None
            return Effect("decision", item.target, "set", decision_value(escalation))
        return Effect("inbox", item.target, "append", item.value)

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
                row = session.get(EscalationRow, escalation_id)
                task_id = row.task_id if row is not None else None
            audit.append(
                session,
                at=self.clock(),
                actor=actor,
                action="denied",
                policy_version=self.policy.version,
                task_id=task_id,
                escalation_id=escalation_id,
                reason=f"{attempted} {why}",
                detail={"attempted": attempted},
            )
        raise NotAllowed(f"not allowed: {attempted} {why}")

    @staticmethod
    def _escalation_row(session: Session, escalation_id: str) -> Any:
        row = queries.escalation_row(session, escalation_id)
        if row is None:
            raise UnknownEscalation(f"unknown escalation {escalation_id!r}")
        return row

    @staticmethod
    def _view(session: Session, row: Any) -> EscalationView:
        return queries.escalation_view(row, queries.cards_of(session, row.id))

    @staticmethod
    def _agent_state(row: Any) -> dict[str, Any] | None:
        context = (row.payload or {}).get("context") or {}
        state = context.get("state")
        return state if isinstance(state, dict) and state else None

    @staticmethod
    def _already_decided(row: Any) -> AlreadyDecided:
        return AlreadyDecided(
            row.id, row.state, row.decided_by, iso(row.decided_at) if row.decided_at else None
        )

    def _emit(self, event: ServiceEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, event.kind)
