"""The audit chain: verified when honest, broken when touched, refused by the database."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from bot.policy import Policy
from bot.records import ActionResult
from tests.support.writers import KillWriter, seed_audit


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


def _verify(store: Store, **options: Any) -> audit.VerifyResult:
    with store.snapshot() as session:
        return audit.verify(session, **options)


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


def test_verify_reads_in_batches_and_finds_a_change_in_a_later_one(store: Store) -> None:
    _append(store, 7)
    seen: list[tuple[int, int]] = []
    assert _verify(store, batch=2, progress=lambda done, total: seen.append((done, total))).ok
    assert seen == [(2, 7), (4, 7), (6, 7), (7, 7)]
    _drop_triggers(store)
    with store.transaction() as session:
        session.execute(sa.text("UPDATE audit_log SET actor = 'U0MALLORY' WHERE seq = 6"))
    result = _verify(store, batch=2)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 6, 5)


def test_a_row_added_beyond_the_head_is_detected(store: Store) -> None:
    """A well-formed row inserted outside the bot: it links and hashes, but the head,
    which every honest append moves in the same commit, never reached it."""
    _append(store, 3)
    with store.transaction() as session:
        last = audit.records_after(session, 2)[0]
        forged: dict[str, Any] = {
            **vars(last),
            "seq": 4,
            "actor": "U0MALLORY",
            "prev_hash": last.hash,
        }
        del forged["hash"]
        forged["hash"] = audit.row_hash(**forged)
        session.execute(audit.AuditRow.__table__.insert(), forged)
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 4
    assert "beyond the chain's head" in (result.problem or "")


def test_a_changed_head_is_detected(store: Store) -> None:
    _append(store, 3)
    with store.transaction() as session:
        session.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": "f" * 64})
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 3 and "head" in (result.problem or "")


def test_export_reads_in_batches(store: Store) -> None:
    _append(store, 5)
    with store.snapshot() as session:
        assert [r.seq for r in audit.iter_records(session, batch=2)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("read", ["snapshot", "reading"])
def test_verify_beside_kills_being_written_reports_intact(
    store: Store, service: EscalationService, read: str
) -> None:
    """Kills commit while verify reads (the progress hook waits for one after every
    batch): the chain up to the head it started from is intact, the rest is not an error.
    Also in a plain read-committed transaction (`reading`, on PostgreSQL), where each
    statement sees the newest commits."""
    seed_audit(store, 2000)
    with KillWriter(service) as writer:
        for _ in range(3):
            before = writer.written
            with getattr(store, read)() as session:
                result = audit.verify(
                    session, batch=500, progress=lambda *_: writer.await_one_more()
                )
            assert result.ok, result.problem
            assert result.checked >= 2000 + before
            assert writer.written >= before + 4
    assert _verify(store).ok


def test_a_kill_during_a_long_verify_is_not_held_up(
    store: Store, database_url: str, control: ControlPlane, policy: Policy
) -> None:
    """The kill runs from another connection while verify is stopped in the middle of
    its read (inside its progress hook) and must finish before verify goes on: a verify
    holding the write lock would leave it waiting (and failing, on SQLite's busy timeout)."""
    seed_audit(store, 20_000)
    bot = Store.from_url(database_url)
    service = EscalationService(bot, control, policy)
    outcome: list[object] = []

    def kill() -> None:
        try:
            outcome.append(service.kill("urgent-1", "cli:alice", "during a verify"))
        except BaseException as exc:
            outcome.append(exc)

    def midway(done: int, total: int) -> None:
        if done == 1000:
            thread = threading.Thread(target=kill)
            thread.start()
            thread.join(timeout=60)
            outcome.append(("finished while verify was at", done, thread.is_alive()))

    try:
        result = _verify(store, batch=1000, progress=midway)
    finally:
        bot.dispose()
    assert isinstance(outcome[0], ActionResult), outcome[0]
    assert outcome[1] == ("finished while verify was at", 1000, False)
    assert result.ok and result.checked == 20_000  # the kill came after its head
    assert _verify(store).checked == 20_001


@pytest.mark.parametrize("db_kind", ["sqlite"])  # PostgreSQL's typed columns refuse this
def test_an_unreadable_row_is_reported_not_raised(store: Store) -> None:
    _append(store, 3)
    _drop_triggers(store)
    with store.transaction() as session:
        session.execute(sa.text("UPDATE audit_log SET state = '{not json' WHERE seq = 2"))
    result = _verify(store)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "unreadable" in (result.problem or "")
