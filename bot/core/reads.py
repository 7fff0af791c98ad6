"""Reads: an escalation, a task's status, the overview, and where a message belongs."""

from __future__ import annotations

from dataclasses import replace

from bot import ids
from bot.control import ControlPlaneError
from bot.core.base import ServiceBase
from bot.db import audit, controls, digests, escalations, reviews, upkeep
from bot.errors import InvalidId, UnknownEscalation, UnknownTask
from bot.fleet import FleetView
from bot.keys import ALL
from bot.records import (
    CardRecord,
    ControlRecord,
    EscalationRecord,
    LiveTask,
    Overview,
    TaskStatus,
)


class Reads(ServiceBase):
    def get_escalation(self, escalation_id: str) -> EscalationRecord:
        ids.check_escalation_id(escalation_id)
        with self.store.reading() as session:
            found = escalations.find(session, escalation_id)
        if found is None:
            raise UnknownEscalation(f"unknown escalation {escalation_id!r}")
        return found

    def find_escalation(self, escalation_id: str) -> EscalationRecord | None:
        with self.store.reading() as session:
            return escalations.find(session, escalation_id)

    def knows(self, task_id: str) -> bool:
        """Whether the store has ever heard of the task (an escalation, a control, a row)."""
        with self.store.reading() as session:
            return upkeep.task_is_known(session, task_id)

    def status(self, target: str) -> TaskStatus:
        """A task's (or, for `agent:<name>`, an agent's) kills, pauses, escalations, last
        audit rows, and what its guard last reported."""
        target = ids.check_target(target)
        now = self.clock()
        live: LiveTask | None = None
        fleet_error: str | None = None
        if not ids.is_agent_target(target):
            try:
                live = self.fleet.task(target, now)
            except ControlPlaneError as exc:
                fleet_error = str(exc)
        with self.store.reading() as session:
            if not upkeep.task_is_known(session, target) and live is None:
                raise UnknownTask(
                    f"unknown task {target!r}: no escalations, kills, pauses or audit rows, "
                    "and no guard has reported it in the last 24 h"
                )
            history = escalations.for_task(session, target)
            agent = live.agent if live else (history[0].agent if history else None)
            agent_key = _agent_key(agent)
            targets = [target, ALL, *([agent_key] if agent_key else [])]
            found = controls.for_targets(session, targets)

            def active(key: str | None) -> ControlRecord | None:
                control = found.get(key) if key else None
                return control if control is not None and control.active else None

            return TaskStatus(
                task_id=target,
                killed=active(f"kill:{target}"),
                killed_all=active(f"kill:{ALL}"),
                paused=active(f"pause:{target}"),
                escalations=tuple(history),
                recent=tuple(audit.recent(session, target)),
                live=live,
                killed_agent=active(f"kill:{agent_key}") if agent_key else None,
                paused_agent=active(f"pause:{agent_key}") if agent_key else None,
                fleet_error=fleet_error,
            )

    def overview(self) -> Overview:
        fleet: FleetView | None = None
        fleet_error: str | None = None
        try:
            fleet = self.fleet.view(self.clock())
        except ControlPlaneError as exc:
            fleet_error = str(exc)
        with self.store.reading() as session:
            return Overview(
                open_escalations=tuple(escalations.open_ones(session)),
                controls=tuple(controls.active(session)),
                rejected=tuple(upkeep.recent_rejected(session)),
                pending_effects=upkeep.pending_effect_count(session),
                reviews=tuple(reviews.waiting(session)),
                live_tasks=fleet.live if fleet else (),
                lost_tasks=fleet.lost if fleet else (),
                fleet_error=fleet_error,
            )

    def escalation_for_message(self, channel: str, ts: str) -> EscalationRecord | None:
        """The escalation whose card is the message (channel, ts): a thread's parent."""
        with self.store.reading() as session:
            return escalations.for_card_message(session, channel, ts)

    def thread_for(
        self, task_id: str, escalation_id: str | None
    ) -> tuple[EscalationRecord, CardRecord | None] | None:
        """Where an agent's words go: its escalation's newest posted card (or its task's
        newest escalation when no id is given). The card is None until it is posted."""
        with self.store.reading() as session:
            if escalation_id:
                found = escalations.find(session, escalation_id)
            else:
                found = escalations.newest_of_task(session, task_id)
            if found is None:
                return None
            # A card posted in a digest: its words go to the digest's thread.
            posted = [
                replace(card, ts=digests.ts_of(session, card.digest_id))
                if card.ts is None and card.digest_id is not None
                else card
                for card in found.cards
            ]
        posted = [card for card in posted if card.ts is not None]
        return found, (posted[-1] if posted else None)


def _agent_key(agent: str | None) -> str | None:
    """`agent:{agent}`, when the name can name agent-wide keys."""
    if not agent:
        return None
    try:
        return ids.agent_target(agent)
    except InvalidId:
        return None
