"""Upkeep: write the database's truth back into Redis, and keep what intake refused."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.control import Effect
from bot.core.base import ServiceBase, control_value, decision_value
from bot.db import audit, controls, escalations, upkeep
from bot.records import AuditAction, PendingEffect


@dataclass(frozen=True)
class ReconcileReport:
    restored: tuple[str, ...] = ()
    replayed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.restored or self.replayed)


class Reconcile(ServiceBase):
    def record_rejected_entry(self, stream_id: str, raw: str, reason: str) -> None:
        with self.store.transaction() as session:
            upkeep.record_rejected(session, stream_id, raw, reason, self.clock())

    def reconcile(self) -> ReconcileReport:
        """Write the database's truth back into Redis: every active kill and pause, and any
        change Redis refused earlier. Raises ControlPlaneError while Redis is down.

        Runs every sweep, so the common case (nothing lost) takes no write lock: the
        active controls are read, and Redis sets only the keys it lacks (SET NX). Only
        when something was restored or is pending does it write, under the lock, and
        first undo a restore that raced with a revive or resume."""
        with self.store.reading() as session:
            active = [
                Effect(control.kind, control.target, "set", control_value(control))  # type: ignore[arg-type]  # kinds in the store are kill or pause
                for control in controls.active(session)
            ]
            pending = upkeep.pending_effect_count(session)
        restored = self.control.ensure(active)
        if not restored and not pending:
            return ReconcileReport()
        now = self.clock()
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

    @staticmethod
    def _replay(session: Session, item: PendingEffect) -> Effect | None:
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
            return Effect("decision", item.target, "set", decision_value(escalation))
        return Effect("inbox", item.target, "append", item.value)
