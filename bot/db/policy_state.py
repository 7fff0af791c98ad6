"""The policy version in force, as the store knows it: replicas that reload the same file
agree through it, so a change is recorded once, not once per replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db.engine import upsert
from bot.db.models import PolicyState

STATE_ID = 1
_STATE = PolicyState.__table__


def _ensure(session: Session, version: str, at: datetime) -> None:
    connection = session.connection()
    connection.execute(
        upsert(connection.dialect.name, _STATE)
        .values(id=STATE_ID, version=version, refused_version=None, changed_at=at)
        .on_conflict_do_nothing(index_elements=[_STATE.c.id])
    )


def adopt(session: Session, version: str, at: datetime) -> str | None:
    """Record `version` as in force. Returns the version it replaced, or None when it was
    already in force (another replica got there first, or nothing changed)."""
    connection = session.connection()
    _ensure(session, version, at)
    old = connection.execute(
        select(_STATE.c.version).where(_STATE.c.id == STATE_ID).with_for_update()
    ).scalar_one()
    if old == version:
        return None
    connection.execute(
        update(_STATE)
        .where(_STATE.c.id == STATE_ID)
        .values(version=version, refused_version=None, changed_at=at)
    )
    return str(old)


def refuse(session: Session, version: str, in_force: str, at: datetime) -> bool:
    """Record that the file of `version` was refused; False when that was known already."""
    connection = session.connection()
    _ensure(session, in_force, at)
    refused = connection.execute(
        select(_STATE.c.refused_version).where(_STATE.c.id == STATE_ID).with_for_update()
    ).scalar_one()
    if refused == version:
        return False
    connection.execute(
        update(_STATE).where(_STATE.c.id == STATE_ID).values(refused_version=version)
    )
    return True
