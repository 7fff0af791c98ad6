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
