"""New escalations a batch at a time (intake's), each with its first card and page as
`escalations.insert` gives them. On PostgreSQL in three short statements: the rows travel
as one JSON array (`json_populate_recordset`), so the statement stays the same small text
whatever the batch's size (a multi-row VALUES list of a few hundred rows costs more to
build and parse than to run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.db.cards import CARD_POST, rank
from bot.db.engine import upsert
from bot.db.escalations import NewEscalation, owe_delivery, values_of
from bot.db.models import EscalationRow
from bot.db.outbox import Topic

_ESCALATION_TABLE = EscalationRow.__table__

ESCALATION_COLUMNS = (
    "id, task_id, agent, task_type, kind, severity, confidence, reason, payload, state, "
    "tier, tier_entered_at, created_at, policy_version, next_action_at, ladder, route, "
    "ack_timeout_seconds, approvals_needed, policy_note, decided_by, decided_at, "
    "decision_rule"
)
_ESCALATIONS = text(
    f"INSERT INTO escalations ({ESCALATION_COLUMNS}) "
    f"SELECT {ESCALATION_COLUMNS} FROM json_populate_recordset(NULL::escalations, :rows) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
_CARDS = text(
    "INSERT INTO cards (escalation_id, tier, channel, superseded, created_at) "
    "SELECT escalation_id, tier, channel, superseded, created_at "
    "FROM json_populate_recordset(NULL::cards, :rows) RETURNING id, escalation_id"
)
_OUTBOX_COLUMNS = "topic, key, escalation_id, wanted, attempts, next_attempt_at, created_at, rank"
_OUTBOX = text(
    f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) "
    f"SELECT {_OUTBOX_COLUMNS} FROM json_populate_recordset(NULL::outbox, :rows)"
)


def _json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def insert_escalations(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """The ids inserted (the others existed)."""
    result = session.connection().execute(_ESCALATIONS, {"rows": _json(rows)})
    return {str(row[0]) for row in result}


def insert_cards(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """One card per escalation: each escalation's new card id."""
    result = session.connection().execute(_CARDS, {"rows": _json(rows)})
    return {str(row[1]): int(row[0]) for row in result}


def insert_outbox(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    session.connection().execute(_OUTBOX, {"rows": _json(rows)})


def insert_many(session: Session, news: Sequence[NewEscalation]) -> set[str]:
    """`insert` for a batch, in a few statements: the ids of those inserted (the others
    existed already). Each comes with its first card and page as `insert` gives them."""
    if not news:
        return set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _insert_many_postgresql(session, news)
    inserted = set(
        connection.execute(
            upsert(connection.dialect.name, _ESCALATION_TABLE)
            .on_conflict_do_nothing(index_elements=[_ESCALATION_TABLE.c.id])
            .returning(_ESCALATION_TABLE.c.id),
            [values_of(new) for new in news],
        ).scalars()
    )
    owe_delivery(session, [new for new in news if new.id in inserted])
    return inserted


def _insert_many_postgresql(session: Session, news: Sequence[NewEscalation]) -> set[str]:
    inserted = insert_escalations(session, [values_of(new) for new in news])
    waiting = [new for new in news if new.id in inserted and not new.decided]
    if not waiting:
        return inserted
    card_ids = insert_cards(
        session,
        [
            {
                "escalation_id": new.id,
                "tier": new.tier,
                "channel": new.channel,
                "superseded": False,
                "created_at": new.at,
            }
            for new in waiting
        ],
    )
    owed = [
        {
            "topic": Topic.CARD.value,
            "key": str(card_ids[new.id]),
            "escalation_id": new.id,
            "wanted": CARD_POST,
            "attempts": 0,
            "next_attempt_at": new.at,
            "created_at": new.at,
            "rank": rank(new.severity),
        }
        for new in waiting
    ]
    owed += [
        {
            "topic": Topic.PAGE.value,
            "key": new.id,
            "escalation_id": new.id,
            "wanted": "trigger",
            "attempts": 0,
            "next_attempt_at": new.at,
            "created_at": new.at,
            "rank": 0,
        }
        for new in waiting
        if new.page
    ]
    insert_outbox(session, owed)
    return inserted
