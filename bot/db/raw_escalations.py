"""Escalations as the agents sent them, before redaction: only under the policy's
`redaction.store_raw: true`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.db.models import RawEscalationRow

_RAW = RawEscalationRow.__table__


def add(
    session: Session,
    escalation_id: str,
    payload: dict[str, Any],
    placeholders: dict[str, str],
    at: datetime,
) -> None:
    session.connection().execute(
        insert(_RAW).values(
            escalation_id=escalation_id, payload=payload, placeholders=placeholders, at=at
        )
    )


def of(session: Session, escalation_id: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The raw payload and the placeholders of an escalation; None when none was kept."""
    row = (
        session.connection()
        .execute(
            select(_RAW.c.payload, _RAW.c.placeholders).where(_RAW.c.escalation_id == escalation_id)
        )
        .first()
    )
    if row is None:
        return None
    return dict(row.payload), {str(k): str(v) for k, v in dict(row.placeholders).items()}
