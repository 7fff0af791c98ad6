"""Appending to the audit chain without first reading its head (PostgreSQL).

A link names the head it follows (seq and hash), and reading the head under its lock
costs a round trip. Instead each engine remembers the head its own last append left, and
the next append links to that guess in one statement that moves the head only if the
head still is the guess (`UPDATE … WHERE seq = guess AND hash = guess`) and inserts the
row only if the head moved. When another writer moved the head meanwhile (the
break-glass CLI, a second replica, another thread), the statement writes nothing and the
caller links again under the head's lock (`audit.append_many`). The guess decides
nothing: the head row does, and writers still queue on its row lock, so the chain cannot
fork and every row's hash is what `audit.row_hash` computes.
"""

from __future__ import annotations

import threading
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import CTE, Connection, Engine, Insert, Update, bindparam, cast, select

from bot.db.models import AuditHead, AuditRow
from bot.records import AuditRecord

HEAD_ID = 1
_AUDIT = AuditRow.__table__
HEAD = AuditHead.__table__

_guesses: WeakKeyDictionary[Engine, tuple[int, str]] = WeakKeyDictionary()
_lock = threading.Lock()


def guess(connection: Connection) -> tuple[int, str] | None:
    """The head this engine's last append left, if it made one."""
    with _lock:
        return _guesses.get(connection.engine)


def remember(connection: Connection, record: AuditRecord) -> None:
    """`record` is the newest link this engine wrote (it may yet roll back: a guess)."""
    with _lock:
        _guesses[connection.engine] = (record.seq, record.hash)


def move_if_guessed() -> Update:
    """The head moved to the new link, only if it still is the guessed one."""
    return (
        HEAD.update()
        .where(
            HEAD.c.id == HEAD_ID,
            HEAD.c.seq == bindparam("guess_seq"),
            HEAD.c.hash == bindparam("guess_hash"),
        )
        .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
    )


def insert_after(gate: CTE) -> Insert:
    """The audit row, inserted once for each row `gate` returns (one, or none)."""
    values = [cast(bindparam(c.name, type_=c.type), c.type) for c in _AUDIT.c]
    return _AUDIT.insert().from_select(
        [c.name for c in _AUDIT.c], select(*values).select_from(gate)
    )


def params(record: AuditRecord, guessed: tuple[int, str]) -> dict[str, Any]:
    return {
        **vars(record),
        "guess_seq": guessed[0],
        "guess_hash": guessed[1],
        "new_seq": record.seq,
        "new_hash": record.hash,
    }


# The row and the head in one statement, if the guess holds: a row back means it did.
APPEND_IF_GUESSED = insert_after(
    move_if_guessed().returning(HEAD.c.seq).cte("moved_head")
).returning(_AUDIT.c.seq)
