"""A storm of escalations into one channel, and what Slack and the database made of it:
shared by the storm test (tests/slack/test_storm.py) and bench/delivery.py."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select

from bot.db.models import CardRow, EscalationRow
from bot.db.store import Store
from tests.support.factories import escalation_data
from tests.support.fake_slack import FakeSlack

AGENTS = ("billing-agent", "support-agent", "crawler")
REASONS = ("refund above the 500 EUR limit", "customer asked for a human", "low confidence")


def storm(count: int, critical: int, tag: str) -> list[dict[str, Any]]:
    """`count` escalations, `critical` of them critical (spread through the storm), the
    rest low and medium, from a few agents for a few reasons."""
    every = max(count // max(critical, 1), 1)
    entries = []
    for i in range(count):
        urgent = i % every == every // 2 and i // every < critical
        entries.append(
            escalation_data(
                escalation_id=f"esc-{tag}-{i:05d}",
                task_id=f"{tag}-{i:05d}",
                agent=AGENTS[i % len(AGENTS)],
                reason=REASONS[(i // 7) % len(REASONS)],
                severity="critical" if urgent else ("low", "medium")[i % 2],
            )
        )
    assert sum(e["severity"] == "critical" for e in entries) == critical
    return entries


def xadd_all(client: redis.Redis, stream: str, entries: Iterable[dict[str, Any]]) -> None:
    """All at once: one pipeline."""
    pipe = client.pipeline(transaction=False)
    for entry in entries:
        pipe.xadd(stream, {"payload": json.dumps(entry)})
    pipe.execute()


@dataclass(frozen=True)
class StoredCard:
    escalation_id: str
    severity: str
    state: str
    created_at: Any
    posted_at: Any
    ts: str | None
    digest_id: int | None
    next_action_at: Any


def stored_cards(store: Store, ids: Iterable[str]) -> list[StoredCard]:
    wanted = list(ids)
    with store.reading() as session:
        rows = session.execute(
            select(
                CardRow.escalation_id,
                EscalationRow.severity,
                EscalationRow.state,
                EscalationRow.created_at,
                CardRow.posted_at,
                CardRow.ts,
                CardRow.digest_id,
                EscalationRow.next_action_at,
            )
            .join(EscalationRow, EscalationRow.id == CardRow.escalation_id)
            .where(CardRow.escalation_id.in_(wanted))
        ).all()
    return [StoredCard(*row) for row in rows]


def posted(store: Store, ids: list[str]) -> list[StoredCard] | None:
    """Every card of `ids`, once each is posted (alone or in a digest); else None."""
    cards = stored_cards(store, ids)
    if len(cards) < len(ids) or any(card.posted_at is None for card in cards):
        return None
    return cards


def buttons_in(fake: FakeSlack, channel: str) -> dict[str, list[str]]:
    """For each escalation id a digest's button opens, the digests (ts) holding it."""
    found: dict[str, list[str]] = {}
    for message in fake.messages(channel):
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if str(element.get("action_id", "")).startswith("escalation.open."):
                    escalation_id = json.loads(element["value"])["e"]
                    found.setdefault(escalation_id, []).append(message.ts)
    return found


def cards_in(fake: FakeSlack, channel: str) -> dict[str, list[str]]:
    """For each escalation id with a card of its own (not a digest), its messages."""
    found: dict[str, list[str]] = {}
    for message in fake.messages(channel):
        if message.thread_ts not in (None, message.ts):
            continue
        for block in message.blocks:
            if block.get("type") != "actions":
                continue
            for element in block.get("elements", []):
                if element.get("action_id") == "escalation.approve":
                    escalation_id = json.loads(element["value"])["e"]
                    found.setdefault(escalation_id, []).append(message.ts)
    return found
