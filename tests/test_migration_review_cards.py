"""The review cards migration, up and down on both databases: reviews still waiting are
owed their card, the outbox takes rows of no escalation, and a downgrade undoes both."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError

from bot.db import migrate
from bot.db.engine import make_engine
from tests.support.databases import DatabaseFactory

REVISION = "0010"
BEFORE = str(
    ScriptDirectory.from_config(migrate.alembic_config()).get_revision(REVISION).down_revision
)
AT = "2026-12-01 12:00:00"


def columns(engine: sa.Engine, table: str) -> dict[str, bool]:
    return {c["name"]: bool(c["nullable"]) for c in sa.inspect(engine).get_columns(table)}


def owe_a_card_of_no_escalation(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO outbox (topic, key, escalation_id, wanted, attempts,"
                " next_attempt_at, created_at) VALUES ('review', '99', NULL, 'post', 0, :at, :at)"
            ),
            {"at": AT},
        )


def test_review_cards_upgrade_and_downgrade(databases: DatabaseFactory) -> None:
    engine = make_engine(databases.fresh(migrated=False))
    try:
        migrate.upgrade(engine, BEFORE)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO reviews (subject, subject_id, task_id, agent, rate, summary,"
                    " created_at, verdict) VALUES ('task', :id, :id, 'a', 0.5, 's', :at, :verdict)"
                ),
                [
                    {"id": "waiting-1", "at": AT, "verdict": None},
                    {"id": "reviewed-1", "at": AT, "verdict": "looks_right"},
                ],
            )
        with pytest.raises(IntegrityError):
            owe_a_card_of_no_escalation(engine)  # before: every outbox row has an escalation

        migrate.upgrade(engine, REVISION)
        assert columns(engine, "outbox")["escalation_id"] is True
        assert {"verdict_paused", "channel", "ts", "posted_at"} <= set(columns(engine, "reviews"))
        with engine.connect() as connection:
            owed = connection.execute(
                sa.text(
                    "SELECT r.subject_id, o.escalation_id, o.wanted, o.next_attempt_at IS NULL"
                    " FROM outbox o JOIN reviews r ON o.key = CAST(r.id AS VARCHAR(128))"
                    " WHERE o.topic = 'review'"
                )
            ).all()
        assert [tuple(row) for row in owed] == [("waiting-1", None, "post", False)]
        owe_a_card_of_no_escalation(engine)

        migrate.downgrade(engine, BEFORE)
        assert columns(engine, "outbox")["escalation_id"] is False
        assert "channel" not in columns(engine, "reviews")
        with engine.connect() as connection:
            left = connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
            kept = connection.execute(sa.text("SELECT count(*) FROM reviews")).scalar_one()
        assert (left, kept) == (0, 2)

        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
