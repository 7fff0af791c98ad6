"""The approvals of escalations that need several people (a quorum)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db.engine import upsert
from bot.db.models import ApprovalRow

_APPROVALS = ApprovalRow.__table__


def add(session: Session, escalation_id: str, approver: str, at: datetime) -> bool:
    """Count `approver` in; False when they had approved already (the same person twice
    counts once)."""
    connection = session.connection()
    statement = (
        upsert(connection.dialect.name, _APPROVALS)
        .values(escalation_id=escalation_id, approver=approver, at=at)
        .on_conflict_do_nothing(index_elements=[_APPROVALS.c.escalation_id, _APPROVALS.c.approver])
        .returning(_APPROVALS.c.id)
    )
    return connection.execute(statement).first() is not None


def of(session: Session, escalation_id: str) -> list[str]:
    """Who approved so far, first first."""
    rows = session.connection().execute(
        select(_APPROVALS.c.approver)
        .where(_APPROVALS.c.escalation_id == escalation_id)
        .order_by(_APPROVALS.c.id)
    )
    return [str(approver) for approver in rows.scalars()]


def clear(session: Session, escalation_id: str) -> None:
    """The arguments changed: earlier approvals were of other arguments."""
    session.connection().execute(
        delete(_APPROVALS).where(_APPROVALS.c.escalation_id == escalation_id)
    )
