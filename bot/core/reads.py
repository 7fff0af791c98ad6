"""Reads: an escalation, a task's status, the overview, and where a message belongs."""

from __future__ import annotations

from bot import ids
from bot.core.base import ServiceBase
from bot.db import audit, controls, escalations, reviews, upkeep
from bot.errors import UnknownEscalation, UnknownTask
from bot.keys import ALL
from bot.records import CardRecord, ControlRecord, EscalationRecord, Overview, TaskStatus


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

    def status(self, task_id: str) -> TaskStatus:
        ids.check_task_id(task_id)
        with self.store.reading() as session:
            if not upkeep.task_is_known(session, task_id):
                raise UnknownTask(
                    f"unknown task {task_id!r}: no escalations, kills, pauses or audit rows"
                )
            found = controls.for_targets(session, [task_id, ALL])

            def active(key: str) -> ControlRecord | None:
                control = found.get(key)
                return control if control is not None and control.active else None

            return TaskStatus(
                task_id=task_id,
                killed=active(f"kill:{task_id}"),
                killed_all=active(f"kill:{ALL}"),
                paused=active(f"pause:{task_id}"),
                escalations=tuple(escalations.for_task(session, task_id)),
                recent=tuple(audit.recent(session, task_id)),
            )

    def overview(self) -> Overview:
        with self.store.reading() as session:
            return Overview(
                open_escalations=tuple(escalations.open_ones(session)),
                controls=tuple(controls.active(session)),
                rejected=tuple(upkeep.recent_rejected(session)),
                pending_effects=upkeep.pending_effect_count(session),
                reviews=tuple(reviews.waiting(session)),
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
        posted = [card for card in found.cards if card.ts is not None]
        return found, (posted[-1] if posted else None)
