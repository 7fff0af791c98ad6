"""A kill's way to its key: on PostgreSQL, BEGIN and one statement that writes the control
and its audit row before Redis; the chain stays whole whoever else writes to it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from bot.clock import utcnow
from bot.control import ControlPlane
from bot.core.service import EscalationService
from bot.db import audit, controls
from bot.db.store import Store
from bot.errors import NothingChanged
from bot.policy import Policy
from tests.conftest import OPERATOR, StaticDirectory
from tests.support.databases import PG_ADMIN_URL, DatabaseFactory


def task() -> str:
    return f"refund-{uuid.uuid4().hex[:8]}"


def verified(store: Store) -> audit.VerifyResult:
    with store.reading() as session:
        result = audit.verify(session)
    assert result.ok, result.problem
    return result


def other_writer(store: Store, url: str) -> None:
    """A row from another engine (the break-glass CLI, a second replica)."""
    other = Store.from_url(url)
    with other.transaction() as session:
        audit.append(session, at=utcnow(), actor="cli:alice", action="note", policy_version="x")
    other.dispose()


@pytest.fixture
def pg_url(pg_databases: DatabaseFactory) -> str:
    return pg_databases.fresh()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store.from_url(pg_url)
    yield store
    store.dispose()


@pytest.fixture
def pg_service(
    pg_store: Store, control: ControlPlane, policy: Policy, directory: StaticDirectory
) -> EscalationService:
    return EscalationService(pg_store, control, policy, directory=directory)


def traced(store: Store, work: Callable[[], object], tmp_path: Path) -> list[str]:
    """The protocol messages the client sent on the pooled connection during `work`."""
    with store.engine.connect() as connection:  # the pool is LIFO: `work` gets this one
        raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    path = tmp_path / "trace.txt"
    with path.open("w") as out:
        raw.pgconn.trace(out.fileno())
        raw.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            work()
        finally:
            raw.pgconn.untrace()
    lines = path.read_text().splitlines()
    return ["".join(line.split("\t")[2:]) for line in lines if line.startswith("F\t")]


def round_trips(messages: list[str]) -> list[str]:
    """What waited for an answer: simple queries, and extended-protocol Syncs."""
    return [m for m in messages if m.startswith(("Query", "Sync"))]


def test_a_kill_is_begin_and_one_statement_before_redis(
    pg_service: EscalationService, pg_store: Store, tmp_path: Path
) -> None:
    pg_service.kill(task(), OPERATOR, "warm the pool and the head")
    messages = traced(pg_store, lambda: pg_service.kill(task(), OPERATOR, "traced"), tmp_path)
    assert round_trips(messages) == ['Query "BEGIN"', "Sync", 'Query "COMMIT"']
    assert not [m for m in messages if "SELECT 1" in m]  # no ping on a hot pool
    assert verified(pg_store).checked == 2


def test_a_stale_guess_of_the_head_still_links_correctly(
    db_kind: str, service: EscalationService, store: Store, database_url: str
) -> None:
    first, second = task(), task()
    service.kill(first, OPERATOR, "one")
    other_writer(store, database_url)  # the head moves behind this engine's back
    result = service.kill(second, OPERATOR, "two")
    assert result.audit_seq == 3
    assert verified(store).checked == 3
    with pytest.raises(NothingChanged):  # already active, with a stale guess again
        other_writer(store, database_url)
        service.kill(second, OPERATOR, "again")
    assert verified(store).checked == 4


def test_an_already_active_kill_writes_nothing(service: EscalationService, store: Store) -> None:
    tid = task()
    service.kill(tid, OPERATOR, "first")
    with pytest.raises(NothingChanged, match="already killed"):
        service.kill(tid, OPERATOR, "second")
    assert verified(store).checked == 1
    assert service.kill(task(), OPERATOR, "next").audit_seq == 2


def test_a_rolled_back_kill_leaves_no_trace_and_a_wrong_guess_costs_nothing(
    service: EscalationService, store: Store
) -> None:
    service.kill(task(), OPERATOR, "one")
    tid = task()
    with pytest.raises(RuntimeError), store.transaction() as session:
        entry = audit.Entry(
            at=utcnow(), actor=OPERATOR, action="kill", policy_version="x", task_id=tid
        )
        written = controls.activate_audited(
            session,
            kind="kill",
            target=tid,
            reason="then rolled back",
            by=OPERATOR,
            at=entry.at,
            escalation_id=None,
            entry=entry,
        )
        assert written is not None and written[1].seq == 2
        raise RuntimeError("the transaction fails after the statement")
    assert service.kill(tid, OPERATOR, "for real").audit_seq == 2
    assert verified(store).checked == 2


def test_concurrent_kills_and_another_writer_keep_one_chain(
    service: EscalationService, store: Store, database_url: str
) -> None:
    kills = [task() for _ in range(24)]
    barrier = threading.Barrier(len(kills) + 1)
    failures: list[BaseException] = []

    def kill(tid: str) -> None:
        barrier.wait()
        try:
            service.kill(tid, OPERATOR, "together")
        except BaseException as exc:
            failures.append(exc)

    def cli() -> None:
        barrier.wait()
        for _ in range(6):
            other_writer(store, database_url)

    threads = [threading.Thread(target=kill, args=(tid,)) for tid in kills]
    threads.append(threading.Thread(target=cli))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert verified(store).checked == len(kills) + 6
    with store.reading() as session:
        rows = list(audit.iter_records(session))
    assert sorted(r.task_id for r in rows if r.action == "kill") == sorted(kills)


def test_a_pooled_connection_the_server_ended_does_not_fail_the_next_kill(
    pg_service: EscalationService, pg_store: Store
) -> None:
    pg_service.kill(task(), OPERATOR, "warm")
    with pg_store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        pid = raw.info.backend_pid
    admin = sa.create_engine(
        sa.make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    with admin.connect() as connection:
        assert connection.execute(sa.text(f"SELECT pg_terminate_backend({pid})")).scalar()
        deadline = time.monotonic() + 10
        while connection.execute(
            sa.text(f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}")
        ).first():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)
    admin.dispose()
    tid = task()
    assert pg_service.kill(tid, OPERATOR, "after the server ended the connection").action == "kill"
    assert verified(pg_store).checked == 2
