"""The store's bookkeeping: rejected stream entries, Redis writes waiting to be replayed,
and idempotency keys of requests already handled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from bot.db.engine import upsert
from bot.db.models import (
    AuditRow,
    ControlRow,
    EscalationRow,
    IdempotencyKey,
    PendingEffectRow,
    RejectedEntryRow,
)
from bot.records import PendingEffect, RejectedEntry

_IDEMPOTENT: dict[str, Any] = {}
RAW_LIMIT = 20_000


def claim_idempotency_key(session: Session, key: str, at: datetime) -> bool:
    """True the first time `key` is claimed; False for every repeat (a Slack retry)."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect not in _IDEMPOTENT:
        table = IdempotencyKey.__table__
        _IDEMPOTENT[dialect] = (
            upsert(dialect, table)
            .values(
                key=bindparam("p_key"), created_at=bindparam("p_at", type_=table.c.created_at.type)
            )
            .on_conflict_do_nothing(index_elements=[table.c.key])
            .returning(table.c.key)
        )
    return connection.execute(_IDEMPOTENT[dialect], {"p_key": key, "p_at": at}).first() is not None


def storable(text: str) -> str:
    """`text` as every database stores it: a NUL or a lone surrogate (both arrive in
    hostile JSON) written as its escape, so that recording a rejection cannot fail too."""
    text = text.replace("\x00", "\\u0000")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def record_rejected(
    session: Session,
    stream_id: str,
    raw: str,
    reason: str,
    at: datetime,
    *,
    stream: str = "escalations",
) -> None:
    session.add(
        RejectedEntryRow(
            stream=stream,
            stream_id=stream_id,
            received_at=at,
            reason=storable(reason),
            raw=storable(raw[:RAW_LIMIT]),
        )
    )


def recent_rejected(session: Session, limit: int = 10) -> list[RejectedEntry]:
    rows = session.scalars(
        select(RejectedEntryRow).order_by(RejectedEntryRow.id.desc()).limit(limit)
    )
    return [
        RejectedEntry(
            stream_id=row.stream_id,
            received_at=row.received_at,
            reason=row.reason,
            raw=row.raw,
            stream=row.stream,
        )
        for row in rows
    ]


def add_pending_effects(
    session: Session,
    effects: Sequence[tuple[str, str, dict[str, Any] | None]],
    error: str,
    at: datetime,
) -> None:
    """Redis refused these (kind, target, value) writes; keep them for reconcile."""
    for kind, target, value in effects:
        session.add(
            PendingEffectRow(kind=kind, target=target, value=value, created_at=at, error=error)
        )


def pending_effect_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingEffectRow)) or 0


def take_pending_effects(session: Session, limit: int = 500) -> list[PendingEffect]:
    """The oldest pending writes, locked and removed: the caller replays them in the same
    transaction, so a failed replay puts them back by rolling back."""
    rows = list(
        session.scalars(
            select(PendingEffectRow).order_by(PendingEffectRow.id).limit(limit).with_for_update()
        )
    )
    taken = [PendingEffect(row.id, row.kind, row.target, row.value) for row in rows]
    if taken:
        session.execute(
            delete(PendingEffectRow).where(PendingEffectRow.id.in_([item.id for item in taken]))
        )
    return taken


def task_is_known(session: Session, task_id: str) -> bool:
    """Whether the store has ever heard of the task: an escalation, a control, an audit row."""
    for column in (EscalationRow.task_id, ControlRow.target, AuditRow.task_id):
        if session.scalar(select(column).where(column == task_id).limit(1)) is not None:
            return True
    return False
