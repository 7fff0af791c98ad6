"""Sampled review (CONTRACTS §8): of requests the policy decided alone, and of finished
tasks (`reviews:` per task type). Sampling is deterministic by id, so the audit can prove
what was sampled and what was not. Each sampled item is owed a review card (the outbox);
its verdict is `bot/core/review_verdicts.py`'s."""

from __future__ import annotations

from bot.core.base import ServiceBase
from bot.core.events import ServiceEvent
from bot.db import escalations, reviews
from bot.db.reviews import NewReview
from bot.policy import sampled
from bot.records import EscalationRecord


def decision_review(escalation: EscalationRecord, rate: float) -> NewReview:
    action = escalation.action or {}
    args = action.get("args") or {}
    summary = f"{escalation.agent} {action.get('name', '?')} {args}: {escalation.reason}"
    return NewReview(
        subject="decision",
        subject_id=escalation.id,
        task_id=escalation.task_id,
        agent=escalation.agent,
        task_type=escalation.task_type,
        escalation_id=escalation.id,
        rule=escalation.decision_rule,
        rate=rate,
        summary=summary,
    )


class Reviews(ServiceBase):
    def task_finished(
        self, task_id: str, agent: str, *, task_type: str | None, notice: str = ""
    ) -> bool:
        """An agent says its task completed: sample it for review at its task type's rate
        (its own, else that of its newest escalation). True when it was sampled."""
        with self.store.reading() as session:
            if not task_type:
                newest = escalations.newest_of_task(session, task_id)
                task_type = newest.task_type if newest is not None else None
        rate = self.policy.reviews.get(task_type or "", 0.0)
        if not sampled(task_id, rate):
            return False
        review = NewReview(
            subject="task",
            subject_id=task_id,
            task_id=task_id,
            agent=agent,
            task_type=task_type,
            escalation_id=None,
            rule=f"reviews.{task_type}",
            rate=rate,
            summary=notice or f"{agent} finished {task_id}",
        )
        with self.store.transaction() as session:
            review_id = reviews.add(session, review, self.clock())
        if review_id is None:
            return False
        self._emit(ServiceEvent("review_owed", f"agent:{agent}", task_id, None))
        return True
