"""The append-only, hash-chained audit log (CONTRACTS §7).

Each row's hash covers its own fields and its predecessor's hash, so changing or removing
any row breaks every link after it. Appends lock the single `audit_head` row, so
concurrent writers queue instead of forking the chain.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.clock import iso
from bot.db import audit_head
from bot.db.models import AuditHead, AuditRow
from bot.records import AuditRecord

GENESIS_HASH = "0" * 64
HEAD_ID = audit_head.HEAD_ID
EXPORT_FIELDS = (
    "seq",
    "at",
    "actor",
    "action",
    "task_id",
    "escalation_id",
    "reason",
    "state",
    "detail",
    "policy_version",
    "prev_hash",
    "hash",
)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    task_id: str | None,
    escalation_id: str | None,
    reason: str | None,
    state: dict[str, Any] | None,
    detail: dict[str, Any] | None,
    policy_version: str,
    prev_hash: str,
) -> str:
    body = _canonical(
        {
            "seq": seq,
            "at": iso(at),
            "actor": actor,
            "action": action,
            "task_id": task_id,
            "escalation_id": escalation_id,
            "reason": reason,
            "state": state,
            "detail": detail,
            "policy_version": policy_version,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode()).hexdigest()


_AUDIT = AuditRow.__table__
_HEAD = AuditHead.__table__
# Built once: appends are on every action's path, and a prebuilt statement with bind
# parameters skips SQLAlchemy's per-call statement construction.
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == HEAD_ID).with_for_update()
_INSERT_ROW = _AUDIT.insert()
_MOVE_HEAD = (
    _HEAD.update()
    .where(_HEAD.c.id == HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
# PostgreSQL: the row and the head in one statement (a data-modifying CTE).
_INSERT_AND_MOVE = (
    _AUDIT.insert()
    .values({column.name: bindparam(column.name, type_=column.type) for column in _AUDIT.c})
    .add_cte(_MOVE_HEAD.cte("moved_head"))
)


@dataclass(frozen=True)
class Entry:
    """A row to append: everything but its place in the chain (seq and hashes)."""

    at: datetime
    actor: str
    action: str
    policy_version: str
    task_id: str | None = None
    escalation_id: str | None = None
    reason: str | None = None
    state: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None


def append(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    policy_version: str,
    task_id: str | None = None,
    escalation_id: str | None = None,
    reason: str | None = None,
    state: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add the next link inside the caller's transaction; it lands when that commits."""
    entry = Entry(at, actor, action, policy_version, task_id, escalation_id, reason, state, detail)
    return append_many(session, [entry])[0]


def append_many(
    session: Session, entries: Sequence[Entry], *, guess: bool = True
) -> list[AuditRecord]:
    """Several links at once (a sweep's climbs): one head lock, one multi-row insert.
    `guess=False`: the engine's guess of the head just failed; go straight to the lock."""
    if not entries:
        return []
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    guessed = None
    if guess and postgresql and len(entries) == 1:
        guessed = audit_head.guess(connection)
    if guessed is not None:
        # One round trip when this engine wrote the head (see bot.db.audit_head).
        records = link(entries, *guessed)
        params = audit_head.params(records[0], guessed)
        if connection.execute(audit_head.APPEND_IF_GUESSED, params).first() is not None:
            audit_head.remember(connection, records[-1])
            return records
    seq, prev_hash = connection.execute(_LOCK_HEAD).one()
    records = link(entries, seq, prev_hash)
    last = records[-1]
    if len(records) == 1 and postgresql:
        # The row and the head in one round trip.
        connection.execute(
            _INSERT_AND_MOVE, {**vars(last), "new_seq": last.seq, "new_hash": last.hash}
        )
    else:
        connection.execute(_INSERT_ROW, [vars(record) for record in records])
        connection.execute(_MOVE_HEAD, {"new_seq": last.seq, "new_hash": last.hash})
    audit_head.remember(connection, last)
    return records


def link(entries: Sequence[Entry], seq: int, prev_hash: str) -> list[AuditRecord]:
    """The entries as the links that follow head (seq, prev_hash), hashed."""
    records: list[AuditRecord] = []
    for entry in entries:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq,
            "at": entry.at,
            "actor": entry.actor,
            "action": str(entry.action),
            "task_id": entry.task_id,
            "escalation_id": entry.escalation_id,
            "reason": entry.reason,
            "state": _roundtrip(entry.state),
            "detail": _roundtrip(entry.detail),
            "policy_version": entry.policy_version,
            "prev_hash": prev_hash,
        }
        prev_hash = row_hash(**fields)
        records.append(AuditRecord(**fields, hash=prev_hash))
    return records


def _roundtrip(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return json.loads(_canonical(value)) if value is not None else None


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, batch: int = 1000) -> VerifyResult:
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    rows = session.execute(
        select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=batch)
    )
    for row in rows.scalars():
        if row.seq != expected_seq:
            return VerifyResult(
                checked, expected_seq, f"row {expected_seq} is missing (next row is {row.seq})"
            )
        if row.prev_hash != expected_prev:
            return VerifyResult(
                checked, row.seq, f"row {row.seq} does not link to row {row.seq - 1}"
            )
        fields = {name: getattr(row, name) for name in EXPORT_FIELDS if name != "hash"}
        if row_hash(**fields) != row.hash:
            return VerifyResult(checked, row.seq, f"row {row.seq} was changed after it was written")
        expected_prev = row.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        return VerifyResult(checked, None, "the audit head row is missing")
    if head.seq != checked or head.hash != expected_prev:
        return VerifyResult(
            checked,
            checked + 1 if head.seq > checked else head.seq,
            f"the chain ends at row {checked} but its head names row {head.seq}: "
            "rows were removed or added outside the bot",
        )
    return VerifyResult(checked)


def record_of(row: AuditRow) -> AuditRecord:
    return AuditRecord(**{name: getattr(row, name) for name in EXPORT_FIELDS})


def recent(session: Session, task_id: str, limit: int = 10) -> list[AuditRecord]:
    """The task's newest rows, newest first."""
    rows = session.scalars(
        select(AuditRow)
        .where(AuditRow.task_id == task_id)
        .order_by(AuditRow.seq.desc())
        .limit(limit)
    )
    return [record_of(row) for row in rows]


def records_after(session: Session, seq: int, limit: int = 100) -> list[AuditRecord]:
    rows = session.scalars(
        select(AuditRow).where(AuditRow.seq > seq).order_by(AuditRow.seq).limit(limit)
    )
    return [record_of(row) for row in rows]


def has_records_after(session: Session, seq: int) -> bool:
    return session.scalar(select(AuditRow.seq).where(AuditRow.seq > seq).limit(1)) is not None


def iter_records(session: Session, since: datetime | None = None) -> Iterator[AuditRecord]:
    query = select(AuditRow).order_by(AuditRow.seq)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    for row in session.execute(query.execution_options(yield_per=1000)).scalars():
        yield record_of(row)


def export(records: Iterator[AuditRecord], out: IO[str], fmt: str) -> int:
    count = 0
    if fmt == "jsonl":
        for record in records:
            out.write(_canonical(record.as_json()) + "\n")
            count += 1
        return count
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            data = record.as_json()
            for field in ("state", "detail"):
                data[field] = "" if data[field] is None else _canonical(data[field])
            writer.writerow(data)
            count += 1
        return count
    raise ValueError(f"unknown export format {fmt!r} (use jsonl or csv)")
