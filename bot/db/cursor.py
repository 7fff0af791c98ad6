"""The notify cursor: how far the chat side has followed the audit log. One row, held by
one worker at a time through a lease, so that replicas never announce twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.db.models import NotifyCursor

CURSOR_ID = 1


def take(session: Session, owner: str, now: datetime, until: datetime) -> int | None:
    """Take or renew the lease; the seq delivered so far, or None when another holds it."""
    won = (
        session.connection()
        .execute(
            update(NotifyCursor)
            .where(
                NotifyCursor.id == CURSOR_ID,
                or_(
                    NotifyCursor.lease_owner.is_(None),
                    NotifyCursor.lease_owner == owner,
                    NotifyCursor.lease_until < now,
                ),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        .rowcount
    )
    if not won:
        return None
    return session.scalar(select(NotifyCursor.seq).where(NotifyCursor.id == CURSOR_ID))


def update_held(session: Session, owner: str, **values: Any) -> None:
    """Change the cursor, only while `owner` holds it."""
    session.execute(
        update(NotifyCursor)
        .where(NotifyCursor.id == CURSOR_ID, NotifyCursor.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def count_failure(session: Session, owner: str, error: str) -> int:
    """One more failure to deliver the rows after the cursor; the count so far (0 when
    `owner` no longer holds it)."""
    cursor = session.get(NotifyCursor, CURSOR_ID, with_for_update=True)
    if cursor is None or cursor.lease_owner != owner:
        return 0
    cursor.failures += 1
    cursor.last_error = error[:2000]
    return cursor.failures
