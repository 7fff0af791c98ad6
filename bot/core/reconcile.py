"""Upkeep: write the database's truth back into Redis, and keep what intake refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.control import DECISION_TTL_SECONDS, Effect
from bot.core.agent_values import AgentValues
from bot.core.base import control_value, decision_rewrite
from bot.db import audit, controls, escalations, upkeep
from bot.records import AuditAction, PendingEffect
from bot.redaction.redactor import Redactor


@dataclass(frozen=True)
class ReconcileReport:
    restored: tuple[str, ...] = ()
    replayed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.restored or self.replayed)


class Reconcile(AgentValues):
    def record_rejected_entry(
        self, stream_id: str, raw: str, reason: str, *, stream: str = "escalations"
    ) -> None:
        """Kept for `list` and `status`, redacted as everything people read is (unless the
        policy keeps raw copies): a refused entry is still full of the agent's data."""
        redaction = self.policy.redaction
        if not redaction.store_raw:
            redactor = Redactor(redaction.rules)
            raw, reason = redactor.text(raw), redactor.text(reason)
        with self.store.transaction() as session:
            upkeep.record_rejected(session, stream_id, raw, reason, self.clock(), stream=stream)

    def reconcile(self) -> ReconcileReport:
        """Write the database's truth back into Redis: every active kill and pause, the
        decisions still within their key's life, and any change Redis refused earlier.
        Raises ControlPlaneError while Redis is down.

        Runs every sweep, so the common case (nothing lost) takes no write lock and one
        round trip to Redis: the active controls are set only where missing (SET NX), and
        the recent decisions' keys are only counted (EXISTS); their values are read and
        written only when some are missing. Only when something was restored or is
        pending does it write, under the lock, and first undo a restore that raced with
        a revive or resume."""
        now = self.clock()
        since = now - timedelta(seconds=DECISION_TTL_SECONDS)
        with self.store.reading() as session:
            active = [
                Effect(control.kind, control.target, "set", control_value(control))  # type: ignore[arg-type]  # kinds in the store are kill or pause
                for control in controls.active(session)
            ]
            pending = upkeep.pending_effect_count(session)
            decided = escalations.decided_since(session, since)
        decision_keys = [self.control.keys.decision(escalation_id) for escalation_id in decided]
        restored, present = self.control.ensure_and_count(active, decision_keys)
        if present < len(decision_keys):
            restored += self._restore_decisions(since, now)
        if not restored and not pending:
            return ReconcileReport()
        with self.store.transaction() as session:
            stale = [
                effect
                for effect in active
                if self.control.key_of(effect) in restored
                and not controls.is_active(session, effect.kind, effect.target)
            ]
            self.control.apply([Effect(e.kind, e.target, "delete") for e in stale])
            stale_keys = {self.control.key_of(e) for e in stale}
            restored = [key for key in restored if key not in stale_keys]
            replays: dict[tuple[str, str], Effect] = {}
            appends: list[Effect] = []
            for item in upkeep.take_pending_effects(session):
                effect = self._replay(session, item)
                if effect is None:
                    continue
                if effect.op == "append":
                    appends.append(effect)
                else:
                    replays[(effect.kind, effect.target)] = effect
            replayed = self.control.apply([*replays.values(), *appends])
            if restored or replayed:
                audit.append(
                    session,
                    at=now,
                    actor="system",
                    action=AuditAction.REDIS_RESTORED,
                    policy_version=self.policy.version,
                    reason=f"wrote {len(restored) + len(replayed)} key(s) back into Redis",
                    detail=self._noted({"restored": restored[:100], "replayed": replayed[:100]}),
                )
        return ReconcileReport(tuple(restored), tuple(replayed))

    def _restore_decisions(self, since: datetime, now: datetime) -> list[str]:
        """Rewrite the lost `decision:{id}` keys of decisions made since `since`, each for
        what is left of its life (an agent waiting on one gets its answer at once)."""
        with self.store.reading() as session:
            decided = escalations.decided_records_since(session, since)
        effects = [
            effect
            for e in decided
            if (effect := decision_rewrite(e, now, self._agent_args(e))) is not None
        ]
        return self.control.ensure(effects)

    def _replay(self, session: Session, item: PendingEffect) -> Effect | None:
        """The write to make now for a refused one: from the current truth, not the old
        value (a kill lifted since is deleted, not set)."""
        if item.kind in ("kill", "pause"):
            control = controls.current(session, item.kind, item.target)
            if control is not None and control.active:
                return Effect(item.kind, item.target, "set", control_value(control))  # type: ignore[arg-type]  # kill or pause, checked above
            return Effect(item.kind, item.target, "delete")  # type: ignore[arg-type]  # kill or pause, checked above
        if item.kind == "decision":
            escalation = escalations.find(session, item.target)
            if escalation is None or escalation.is_open:
                return None
            return decision_rewrite(escalation, self.clock(), self._agent_args(escalation))
        if item.kind == "redaction":  # a decided escalation's map: its last day
            return Effect("redaction", item.target, "expire")
        if item.kind == "outcome":  # the same entry id: written at most once
            return Effect("outcome", item.target, "append", item.value)
        return Effect("inbox", item.target, "append", item.value)
