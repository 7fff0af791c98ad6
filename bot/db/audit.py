"""The append-only, hash-chained audit log (CONTRACTS §7).

Each row's hash covers its own fields and its predecessor's hash, so changing or removing
any row breaks every link after it. Appends lock the single `audit_head` row, so
concurrent writers queue instead of forking the chain.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import String, Text, bindparam, cast, func, select, type_coerce
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


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> str:
    return _ENCODER.encode(value)  # one encoder, not one per call: json.dumps(…) with options


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


Progress = Callable[[int, int], None]  # (rows checked, rows to check)
_HASHED = tuple(name for name in EXPORT_FIELDS if name != "hash")
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == HEAD_ID)
_LAST_SEQ = select(func.max(_AUDIT.c.seq))
# The columns as plain as the drivers give them: SQLAlchemy's processing of SQLite's
# datetime text (a regular expression per value) and psycopg's loading of JSON (a Python
# call per value, on bytes) cost more than the rest of a row's check. JSON arrives as
# text and `at` as the driver has it; `_plain` decodes them with the C parsers.
_COLUMNS = tuple(
    cast(_AUDIT.c[name], Text()).label(name)
    if name in ("state", "detail")
    else type_coerce(_AUDIT.c[name], String()).label(name)
    if name == "at"
    else _AUDIT.c[name]
    for name in EXPORT_FIELDS
)
_AT, _STATE, _DETAIL = (EXPORT_FIELDS.index(name) for name in ("at", "state", "detail"))
_PAGE = (
    select(*_COLUMNS)
    .where(_AUDIT.c.seq > bindparam("after"), _AUDIT.c.seq <= bindparam("upto"))
    .order_by(_AUDIT.c.seq)
    .limit(bindparam("size"))
)


def _plain(row: Sequence[Any]) -> list[Any]:
    """A row of `_COLUMNS` with `at` as an aware UTC datetime (SQLite gives text, psycopg
    a datetime) and the JSON decoded. ValueError if a value is unreadable."""
    values = list(row)
    at = values[_AT]
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    values[_AT] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    for index in (_STATE, _DETAIL):
        if values[index] is not None:
            values[index] = json.loads(values[index])
    return values


def verify(session: Session, batch: int = 5000, progress: Progress | None = None) -> VerifyResult:
    """Check the chain up to the head as read first. Rows appended meanwhile (their head
    moves in the same commit) are beyond it and not an error; a row beyond the head that
    the head never reached was added outside the bot. Plain rows, read in keyset batches.

    Run it in `Store.snapshot()`: one view of the table throughout, and no write lock."""
    connection = session.connection()
    head = connection.execute(_READ_HEAD).one_or_none()
    if head is None:
        return VerifyResult(0, None, "the audit head row is missing")
    head_seq, head_hash = head
    expected_prev, checked = GENESIS_HASH, 0
    while checked < head_seq:
        params = {"after": checked, "upto": head_seq, "size": batch}
        rows = connection.execute(_PAGE, params).all()
        if not rows:
            break
        for raw in rows:
            seq, prev_hash, stored = raw[0], raw[-2], raw[-1]
            if seq != checked + 1:
                return VerifyResult(
                    checked, checked + 1, f"row {checked + 1} is missing (next row is {seq})"
                )
            if prev_hash != expected_prev:
                return VerifyResult(checked, seq, f"row {seq} does not link to row {seq - 1}")
            try:
                fields = dict(zip(_HASHED, _plain(raw), strict=False))
            except ValueError:
                return VerifyResult(checked, seq, f"row {seq} was changed: it is unreadable")
            if row_hash(**fields) != stored:
                return VerifyResult(checked, seq, f"row {seq} was changed after it was written")
            expected_prev = stored
            checked += 1
        if progress is not None:
            progress(checked, head_seq)
    if checked < head_seq:
        return VerifyResult(
            checked,
            checked + 1,
            f"the chain ends at row {checked} but its head names row {head_seq}: "
            "rows were removed outside the bot",
        )
    if expected_prev != head_hash:
        return VerifyResult(
            checked, head_seq, f"the head's hash is not row {head_seq}'s: it was changed"
        )
    last = connection.execute(_LAST_SEQ).scalar()
    if last is not None and last > head_seq:
        # Read after the last row: a head that has moved past it means honest appends.
        now = connection.execute(_READ_HEAD).one_or_none()
        if now is None or last > now.seq:
            return VerifyResult(
                checked,
                head_seq + 1,
                f"row {last} is beyond the chain's head (row {head_seq}): "
                "rows were added outside the bot",
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


def iter_records(
    session: Session, since: datetime | None = None, batch: int = 5000
) -> Iterator[AuditRecord]:
    """Every row in order (those at or after `since`), as plain rows in keyset batches."""
    query = select(*_COLUMNS)
    if since is not None:
        query = query.where(_AUDIT.c.at >= since)
    query = query.where(_AUDIT.c.seq > bindparam("after")).order_by(_AUDIT.c.seq).limit(batch)
    connection = session.connection()
    after = 0
    while True:
        rows = connection.execute(query, {"after": after}).all()
        for row in rows:
            yield AuditRecord(**dict(zip(EXPORT_FIELDS, _plain(row), strict=True)))
        if len(rows) < batch:
            return
        after = rows[-1][0]


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
