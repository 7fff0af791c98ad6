"""A storm (CONTRACTS §13): 1,000 escalations, 10 of them critical, into one channel of a
fake Slack that holds each channel to about a message a second. Every critical card is
posted within 3 s of its intake (the one timing the contract asks for, measured from the
intake time the bot records); the rest go out in digests; none is lost, none posted
twice; each tier's deadline runs from its posting; `/agent kill` is answered meanwhile
(its latency is printed, against idle, and compared in bench/delivery.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import OPERATOR
from tests.slack.conftest import Bot, running_bot
from tests.support.databases import DatabaseFactory
from tests.support.storm import buttons_in, cards_in, posted, storm, xadd_all
from tests.support.waiting import wait_until

TRIAGE = "C0TRIAGE"
ACK_TIMEOUT = timedelta(minutes=5)  # the test policy's triage tier


@pytest.fixture
def storm_bot(tmp_path: Path, pg_databases: DatabaseFactory, redis_url: str) -> Iterator[Bot]:
    with running_bot(tmp_path, pg_databases.fresh(), redis_url) as bot:
        yield bot


def _kill(bot: Bot, task_id: str) -> float:
    start = time.monotonic()
    reply = bot.reply_to(bot.command(f"kill {task_id}", OPERATOR), timeout=30)
    elapsed = time.monotonic() - start
    assert "kill" in str(reply).lower(), reply
    return elapsed


def test_a_storm_goes_out_most_severe_first_paced_and_digested(storm_bot: Bot) -> None:
    bot = storm_bot
    idle = _kill(bot, "idle-task")
    entries = storm(1000, critical=10, tag="storm")
    ids = [entry["escalation_id"] for entry in entries]
    critical = {e["escalation_id"] for e in entries if e["severity"] == "critical"}

    xadd_all(bot.rdb, bot.key("escalations"), entries)
    during = _kill(bot, entries[1]["task_id"])
    cards = wait_until(lambda: posted(bot.store, ids), 180, "every card of the storm posted")

    # Critical cards: one message each, within 3 s of the intake time the bot recorded.
    for card in cards:
        if card.escalation_id in critical:
            assert card.ts is not None and card.digest_id is None
            assert card.posted_at - card.created_at <= timedelta(seconds=3), card
        else:  # low and medium: in digests
            assert card.ts is None and card.digest_id is not None, card
    # None lost, none twice: each critical card once, each of the rest in one digest.
    alone = cards_in(bot.fake, TRIAGE)
    digested = buttons_in(bot.fake, TRIAGE)
    assert set(alone) == critical
    assert all(len(messages) == 1 for messages in alone.values())
    assert set(digested) == set(ids) - critical
    assert all(len(messages) == 1 for messages in digested.values())
    # Deadlines from posting (the card or digest), not from intake.
    for card in cards:
        if card.state == "open":
            assert card.next_action_at == card.posted_at + ACK_TIMEOUT, card
    # Slack never had to refuse the bot for long: paced, not hammered.
    calls = bot.fake.calls("chat.postMessage")
    digests = len({ts for messages in digested.values() for ts in messages})
    print(
        f"\nstorm: {len(calls)} chat.postMessage calls ({sum(c.failed for c in calls)} "
        f"refused) for 1,000 escalations: {len(critical)} cards, {digests} digests; "
        f"/agent kill answered in {during * 1e3:.0f} ms during it, {idle * 1e3:.0f} ms idle"
    )
