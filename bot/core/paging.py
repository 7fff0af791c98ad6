"""Paging: the PagerDuty events escalations owe, claimed from the outbox for the pager,
and what became of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.core.base import ServiceBase
from bot.core.events import ServiceEvent
from bot.db import audit, escalations, outbox
from bot.db.outbox import Topic
from bot.records import AuditAction, EscalationRecord

PAGE_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class PageJob:
    """A PagerDuty event an escalation owes: `action` is trigger, acknowledge or resolve;
    `sent` the last one PagerDuty took."""

    action: str
    sent: str | None
    escalation: EscalationRecord
    attempts: int = 0
    item_id: int = 0

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


class Paging(ServiceBase):
    def claim_pages(self, *, limit: int = 50, owner: str = "pager") -> list[PageJob]:
        """PagerDuty events owed, claimed for a while so that a replica skips them."""
        now = self.clock()
        with self.store.transaction() as session:
            items = outbox.claim(
                session, Topic.PAGE, now=now, lease=PAGE_LEASE, owner=owner, limit=limit
            )
            jobs = []
            for item in items:
                found = escalations.find(session, item.key)  # a page's key: its escalation
                if found is None or item.wanted is None:
                    continue
                jobs.append(PageJob(item.wanted, item.sent, found, item.attempts, item.id))
            return jobs

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
        record = job.escalation
        with self.store.transaction() as session:
            if error is None:
                outbox.sent(session, job.item_id, job.action, release=not claimed)
                attempts = 0
            else:
                attempts, _delay = outbox.failed(session, job.item_id, error, now)
            if not skipped and (error is None or attempts == 1):
                audit.append(
                    session,
                    at=now,
                    actor="system",
                    action=AuditAction.PAGE,
                    policy_version=self.policy.version,
                    task_id=record.task_id,
                    escalation_id=record.id,
                    reason=(
                        f"PagerDuty {job.action}: sent"
                        if error is None
                        else f"PagerDuty {job.action} failed: {error}; retrying"
                    ),
                    detail={
                        "event_action": job.action,
                        "ok": error is None,
                        "dedup_key": record.id,
                    },
                )
        result = "skipped" if skipped else "sent" if error is None else "failed"
        self._emit(
            ServiceEvent(
                "paged",
                "system",
                record.task_id,
                record.id,
                detail={"event": job.action, "result": result},
            )
        )
