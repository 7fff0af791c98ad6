"""`escbot show`: an escalation as stored, and with `--raw` as its agent sent it. Raw
copies exist only under the policy's `redaction.store_raw: true`; each look at one is an
audit row (`show_raw`), written before anything is shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.core.base import Change
from bot.core.reads import Reads
from bot.db import raw_escalations
from bot.errors import InvalidInput
from bot.records import AuditAction, EscalationShown


class RawViews(Reads):
    def show_escalation(self, escalation_id: str, actor: str, *, raw: bool) -> EscalationShown:
        escalation = self.get_escalation(escalation_id)
        if not raw:
            return EscalationShown(escalation)
        kept: list[dict[str, Any]] = []

        def build(session: Session, now: datetime) -> Change:
            found = raw_escalations.of(session, escalation.id)
            if found is None:
                raise InvalidInput(
                    f"no raw copy of escalation {escalation.id!r} is kept: it arrived while "
                    "the policy's redaction.store_raw was false, so the database holds only "
                    "the redacted text"
                )
            kept.append(found[0])
            return Change(
                action=AuditAction.SHOW_RAW,
                message=f"raw escalation {escalation.id} shown to {actor}",
                event="show_raw",
                task_id=escalation.task_id,
                escalation_id=escalation.id,
            )

        result = self._perform(
            actor, "admin", "show the raw escalation", build, escalation_id=escalation.id
        )
        return EscalationShown(escalation, raw=kept[0], audit_seq=result.audit_seq)
