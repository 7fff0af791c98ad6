"""The audit chain: verified when honest, broken when touched, refused by the database."""

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from bot.db import audit
from bot.db.store import Store


def _append(store: Store, n: int, *, at: datetime | None = None) -> None:
    for i in range(n):
        with store.transaction() as session:
            audit.append(
                session,
                at=at or datetime.now(UTC),
                actor="U0OPERATOR",
                action="kill",
                policy_version="sha256:test",
                task_id=f"task-{i}",
                reason=f"reason {i} — ünïcode",
                state={"step": i, "nested": {"ok": True, "ratio": 0.1 + i}},
            )


def _verify(store: Store) -> audit.VerifyResult:
    with store.transaction() as session:
        return audit.verify(session)


def test_an_honest_chain_verifies(store: Store) -> None:
    _append(store, 12)
    result = _verify(store)
    assert result.ok, result.problem
    assert result.checked == 12


def test_concurrent_writers_never_fork_the_chain(store: Store) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            _append(store, 10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = _verify(store)
    assert result.ok, result.problem
    assert result.checked == 80


def test_update_and_delete_are_refused_by_the_database(store: Store) -> None:
    _append(store, 3)
    statements = [
        "UPDATE audit_log SET reason = 'rewritten' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log",
    ]
    if store.dialect == "postgresql":
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), store.transaction() as session:
            session.execute(sa.text(statement))
    assert _verify(store).ok
    assert _verify(store).checked == 3


def _drop_triggers(store: Store) -> None:
    with store.transaction() as session:
        if store.dialect == "postgresql":
            session.execute(sa.text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            session.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            session.execute(sa.text("DROP TRIGGER audit_log_no_delete"))


def test_a_changed_row_is_detected_with_the_triggers_dropped(store: Store) -> None:
    _append(store, 5)
    _drop_triggers(store)
    with store.transaction() as session:
        session.execute(sa.text("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3"))
    result = _verify(store)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "changed" in (result.problem or "")


def test_a_removed_row_is_detected(store: Store) -> None:
    _append(store, 5)
    _drop_triggers(store)
    with store.transaction() as session:
        session.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 2


def test_a_removed_last_row_is_detected(store: Store) -> None:
    _append(store, 4)
    _drop_triggers(store)
    with store.transaction() as session:
        session.execute(sa.text("DELETE FROM audit_log WHERE seq = 4"))
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 4


def test_export_jsonl_and_csv_with_since(store: Store) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    _append(store, 2, at=old)
    _append(store, 3)
    with store.transaction() as session:
        out = io.StringIO()
        assert audit.export(audit.iter_records(session), out, "jsonl") == 5
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5]
        assert rows[0]["state"] == {"nested": {"ok": True, "ratio": 0.1}, "step": 0}
        assert rows[1]["prev_hash"] == rows[0]["hash"]
        since = old + timedelta(days=1)
        out = io.StringIO()
        assert audit.export(audit.iter_records(session, since=since), out, "csv") == 3
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("seq,at,actor,action")
        assert len(lines) == 4
