"""Verdicts on sampled reviews (CONTRACTS §11): *looks right* or *flagged*, by an
operator, once (a compare-and-set: a second verdict, by anyone, changes nothing and says
who reviewed first). A flag may also pause the task or its agent, in the verdict's own
transaction, through the pause of `bot/core/overrides.py`: its own `pause` audit row
after the `review` row, its key written with the verdict's."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy.orm import Session

from bot import ids
from bot.clock import iso
from bot.core.base import MAX_TEXT, Change, checked_text
from bot.core.overrides import Overrides
from bot.db import audit, reviews
from bot.errors import AlreadyReviewed, InvalidInput, NothingChanged, UnknownReview
from bot.records import ActionResult, AuditAction, ReviewItem

ReviewVerdict = Literal["looks_right", "flagged"]
PauseChoice = Literal["task", "agent"]
VERDICTS: tuple[str, ...] = get_args(ReviewVerdict)
PAUSES: tuple[str, ...] = get_args(PauseChoice)
VERDICT_WORDS = {"looks_right": "looks right", "flagged": "flagged"}


def review_id_of(value: object) -> int:
    """A review's id as a person types it (`escbot review 12 …`) or a button carries it."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) == 0:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidInput(f"invalid review id {shown!r}: a review id is a positive number")
    return int(text)


def already_reviewed(review: ReviewItem) -> AlreadyReviewed:
    at = iso(review.verdict_at) if review.verdict_at else None
    return AlreadyReviewed(
        review.id, VERDICT_WORDS.get(review.verdict or "", "?"), review.verdict_by, at
    )


def what_was_reviewed(review: ReviewItem) -> str:
    if review.subject == "decision":
        return f"the policy's decision on escalation {review.subject_id}"
    return f"finished task {review.subject_id}"


class ReviewVerdicts(Overrides):
    def get_review(self, review_id: int | str) -> ReviewItem:
        number = review_id_of(review_id)
        with self.store.reading() as session:
            found = reviews.find(session, number)
        if found is None:
            raise UnknownReview(f"unknown review {number}")
        return found

    def review(
        self,
        review_id: int | str,
        actor: str,
        verdict: str,
        *,
        note: str | None = None,
        pause: str | None = None,
    ) -> ActionResult:
        """Give a sampled review its verdict: `looks_right`, or `flagged` with what is
        wrong (required), and, for a flag, `pause` = `task` (the reviewed task) or `agent`
        (every task of its agent, `pause:agent:{agent}`)."""
        number = review_id_of(review_id)
        if verdict not in VERDICTS:
            raise InvalidInput(f"unknown verdict {verdict!r} (use {' or '.join(VERDICTS)})")
        flagged = verdict == "flagged"
        note = checked_text(note, "what is wrong", required=flagged)
        if pause is not None and pause not in PAUSES:
            raise InvalidInput(f"unknown pause {pause!r} (use {' or '.join(PAUSES)})")
        if pause is not None and not flagged:
            raise InvalidInput("only a flag can pause the task or its agent")
        with self.store.reading() as session:
            known = reviews.find(session, number)  # for a refusal's audit row

        def build(session: Session, now: datetime) -> Change:
            target = None
            if known is not None and pause is not None:
                target = known.task_id if pause == "task" else ids.agent_target(known.agent)
            reviewed = reviews.give_verdict(
                session, number, verdict=verdict, by=actor, at=now, note=note, paused=target
            )
            if reviewed is None:
                current = reviews.find(session, number)
                if current is None:
                    raise UnknownReview(f"unknown review {number}")
                raise already_reviewed(current)
            detail = {
                "verdict": verdict,
                "review": reviewed.id,
                "subject": reviewed.subject,
                "subject_id": reviewed.subject_id,
                "note": note,
                "pause": target,
            }
            record = audit.append(
                session,
                at=now,
                actor=actor,
                action=AuditAction.REVIEW,
                policy_version=self.policy.version,
                task_id=reviewed.task_id,
                escalation_id=reviewed.escalation_id,
                reason=note,
                detail=self._noted(detail),
            )
            said = f": {note}" if note else ""
            message = (
                f"Review {number} ({what_was_reviewed(reviewed)}) {VERDICT_WORDS[verdict]}{said}."
            )
            change = Change(
                action=AuditAction.REVIEW,
                event="reviewed",
                message=message,
                task_id=reviewed.task_id,
                escalation_id=reviewed.escalation_id,
                reason=note,
                detail=detail,
                audited=record,
            )
            if target is not None:
                self._pause_for(
                    change, session, now, target, actor, f"flagged in review {number}{said}"
                )
            return change

        return self._perform(
            actor,
            "operator",
            "review",
            build,
            task_id=known.task_id if known else None,
            escalation_id=known.escalation_id if known else None,
        )

    def _pause_for(
        self, change: Change, session: Session, now: datetime, target: str, actor: str, why: str
    ) -> None:
        """The operator's pause, inside the verdict's transaction: its audit row and key
        join the verdict's; a pause already in force is left as it is, and said so."""
        try:
            paused = self._activation("pause", target, actor, why[:MAX_TEXT], change.escalation_id)(
                session, now
            )
        except NothingChanged as exc:
            change.message += f" {exc.message[:1].upper()}{exc.message[1:]}."
            return
        change.effects.extend(paused.effects)
        change.control = paused.control
        change.message += f" {paused.message}"
