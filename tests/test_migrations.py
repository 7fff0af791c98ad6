"""Migrations run up and down on both databases, and agree with the models."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.db import migrate
from bot.db.engine import make_engine
from bot.db.models import Base
from tests.support.databases import DatabaseFactory

TABLES = {
    "escalations",
    "cards",
    "controls",
    "audit_log",
    "audit_head",
    "rejected_entries",
    "pending_effects",
}


def test_upgrade_downgrade_upgrade(databases: DatabaseFactory) -> None:
    engine = make_engine(databases.fresh(migrated=False))
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert not TABLES & set(sa.inspect(engine).get_table_names())
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_models_and_migrations_agree(databases: DatabaseFactory) -> None:
    engine = make_engine(databases.fresh(migrated=False))
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_next_action_at_is_indexed(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        indexes = sa.inspect(engine).get_indexes("escalations")
        assert any(index["column_names"] == ["next_action_at"] for index in indexes)
    finally:
        engine.dispose()


def _rows(engine: sa.Engine, query: str) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(query))]


def test_0004_moves_card_and_page_retries_into_the_outbox_and_back(
    databases: DatabaseFactory,
) -> None:
    """Rows written under 0003 (retry columns on cards, six page_* columns on escalations)
    survive the upgrade into `outbox` and the downgrade out of it."""
    engine = make_engine(databases.fresh(migrated=False))
    at = "2026-11-30 12:00:00"
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO escalations (id, task_id, agent, kind, severity, reason,"
                    " payload, state, tier, tier_entered_at, created_at, policy_version,"
                    " page_wanted, page_attempts, page_error, page_next_attempt_at)"
                    " VALUES (:id, 't', 'a', 'exception', 'high', 'r', '{}', 'open',"
                    " 'incident', :at, :at, 'v', :wanted, :attempts, :error, :at)"
                ),
                [
                    {"id": "E1", "at": at, "wanted": "trigger", "attempts": 2, "error": "HTTP 503"},
                    {"id": "E2", "at": at, "wanted": None, "attempts": 0, "error": None},
                ],
            )
            connection.execute(
                sa.text(
                    "INSERT INTO cards (escalation_id, tier, channel, ts, superseded, created_at,"
                    " attempts, next_attempt_at, last_error)"
                    " VALUES (:id, 'triage', 'C1', :ts, false, :at, :attempts, :next, :error)"
                ),
                [
                    {"id": "E1", "ts": "1.1", "at": at, "attempts": 0, "next": None, "error": None},
                    {
                        "id": "E2",
                        "ts": None,
                        "at": at,
                        "attempts": 3,
                        "next": at,
                        "error": "ratelimited",
                    },
                ],
            )
        migrate.upgrade(engine, "0004")
        outbox = _rows(
            engine,
            "SELECT topic, key, escalation_id, wanted, sent, attempts, last_error,"
            " next_attempt_at IS NULL AS settled FROM outbox ORDER BY topic, escalation_id",
        )
        assert [
            (r["topic"], r["escalation_id"], r["wanted"], r["sent"], r["attempts"], r["last_error"])
            for r in outbox
        ] == [
            ("card", "E1", "post", "post", 0, None),
            ("card", "E2", "post", None, 3, "ratelimited"),
            ("page", "E1", "trigger", None, 2, "HTTP 503"),
        ]
        assert [bool(r["settled"]) for r in outbox] == [True, False, False]
        assert "page_wanted" not in {
            c["name"] for c in sa.inspect(engine).get_columns("escalations")
        }

        migrate.downgrade(engine, "0003")
        pages = _rows(
            engine,
            "SELECT id, page_wanted, page_attempts, page_error FROM escalations ORDER BY id",
        )
        assert pages == [
            {"id": "E1", "page_wanted": "trigger", "page_attempts": 2, "page_error": "HTTP 503"},
            {"id": "E2", "page_wanted": None, "page_attempts": 0, "page_error": None},
        ]
        cards = _rows(
            engine,
            "SELECT escalation_id, attempts, last_error, next_attempt_at IS NULL AS settled"
            " FROM cards ORDER BY escalation_id",
        )
        assert [(c["escalation_id"], c["attempts"], c["last_error"]) for c in cards] == [
            ("E1", 0, None),
            ("E2", 3, "ratelimited"),
        ]
        assert [bool(c["settled"]) for c in cards] == [True, False]
        assert "outbox" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_0005_indexes_decided_at_and_drops_it_on_downgrade(databases: DatabaseFactory) -> None:
    def indexed(engine: sa.Engine) -> bool:
        indexes = sa.inspect(engine).get_indexes("escalations")
        return any(index["column_names"] == ["decided_at"] for index in indexes)

    engine = make_engine(databases.fresh(migrated=False))
    try:
        migrate.upgrade(engine, "0004")
        assert not indexed(engine)
        migrate.upgrade(engine, "0005")
        assert indexed(engine)
        migrate.downgrade(engine, "0004")
        assert not indexed(engine)
        migrate.upgrade(engine)
        assert indexed(engine)
    finally:
        engine.dispose()
