"""New escalations a batch at a time on PostgreSQL, in three short statements: the rows
travel as one JSON array (`json_populate_recordset`), so the statement stays the same
small text whatever the batch's size (a multi-row VALUES list of a few hundred rows costs
more to build and parse than to run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

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
