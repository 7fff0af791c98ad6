"""One sweep with 100,000 open escalations, of which 0, 100 and 1,000 are due.

    .venv/bin/python bench/sweep.py [--open 100000] [--repeat 7]

Times the sweep itself (tier climbs in the database, the re-assertion of kills) apart
from what it causes outside: the next tier's cards posted to a fake Slack and the pages
sent to a fake PagerDuty (over HTTPS, trusting its test CA), through the real clients.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, text, update

from bench.common import REDIS_URL, database, save
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.db.models import CardRow, EscalationRow, OutboxRow
from bot.db.store import Store
from bot.keys import KeyNames
from bot.pager import Pager
from bot.policy import parse_policy
from bot.slack.client import make_web_client
from bot.slack.worker import SlackWorker
from tests.conftest import POLICY_YAML
from tests.support.fake_pagerduty import FakePagerDuty
from tests.support.fake_slack import FakeSlack

ROUTING_KEY = "R0UTINGKEY0123456789ABCDEFGHIJKL"
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def fill(store: Store, total: int, policy_version: str) -> list[str]:
    """`total` open escalations at the review tier, due an hour from now."""
    ids = [f"bench-{i:06d}" for i in range(total)]
    later = NOW + timedelta(hours=1)
    payload = {"task_id": "t", "reason": "bench", "context": {"state": {"step": 1}}}
    rows = [
        {
            "id": eid,
            "task_id": f"task-{i}",
            "agent": "bench-agent",
            "task_type": "refund",
            "kind": "approval",
            "severity": "high",
            "confidence": 0.5,
            "reason": "bench",
            "payload": payload,
            "state": "open",
            "tier": "review",
            "tier_entered_at": NOW,
            "created_at": NOW,
            "policy_version": policy_version,
            "next_action_at": later,
        }
        for i, eid in enumerate(ids)
    ]
    cards = [
        {
            "escalation_id": eid,
            "tier": "review",
            "channel": "C0REVIEW",
            "ts": f"{i}.000001",
            "superseded": False,
            "created_at": NOW,
            "posted_at": NOW,
        }
        for i, eid in enumerate(ids)
    ]
    with store.transaction() as session:
        for start in range(0, total, 5000):
            session.execute(EscalationRow.__table__.insert(), rows[start : start + 5000])
            session.execute(CardRow.__table__.insert(), cards[start : start + 5000])
    # A table in service has statistics; a bulk-loaded one has none until analysed.
    with store.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return ids


def make_due(store: Store, ids: list[str]) -> None:
    """Put `ids` back at the review tier, due now (their climbed cards stay: harmless)."""
    with store.transaction() as session:
        session.execute(
            update(EscalationRow)
            .where(EscalationRow.id.in_(ids))
            .values(
                tier="review",
                next_action_at=NOW - timedelta(seconds=1),
                state="open",
            )
        )
        session.execute(
            delete(OutboxRow).where(OutboxRow.escalation_id.in_(ids), OutboxRow.topic == "page")
        )
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.escalation_id.in_(ids), OutboxRow.topic == "card")
            .values(next_attempt_at=None)
        )


def run_kind(kind: str, total: int, repeat: int) -> dict[str, object]:
    policy = parse_policy(POLICY_YAML.encode())
    client = connect(REDIS_URL)
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    results: dict[str, object] = {}
    with (
        database(kind) as url,
        FakeSlack() as slack,
        FakePagerDuty() as pagerduty,
        tempfile.TemporaryDirectory() as trust,
    ):
        store = Store.from_url(url)
        service = EscalationService(
            store,
            ControlPlane(client, KeyNames(prefix)),
            policy,
            clock=lambda: NOW,
            paging=True,
        )
        ids = fill(store, total, policy.version)
        worker = SlackWorker(
            make_web_client("xoxb-bench", slack.api_url),
            ChatDelivery(store, "bench", clock=lambda: NOW),
            policy,
            clock=lambda: NOW,
        )
        ca_file = Path(pagerduty.trust_env(Path(trust))["SSL_CERT_FILE"])
        pager = Pager(service, ROUTING_KEY, pagerduty.url, ca_file=ca_file)
        for due in (0, 100, 1000):
            sweeps, cards, pages = [], [], []
            for _ in range(repeat):
                make_due(store, ids[:due])
                start = time.perf_counter()
                service.sweep_tiers(owner="bench")
                service.reconcile()
                sweeps.append(time.perf_counter() - start)
                start = time.perf_counter()
                posted = 0
                while batch := worker.post_cards():
                    posted += batch
                cards.append(time.perf_counter() - start)
                start = time.perf_counter()
                while pager.tick():
                    pass
                pages.append(time.perf_counter() - start)
            results[str(due)] = {
                "sweep_median_ms": statistics.median(sweeps) * 1e3,
                "sweep_max_ms": max(sweeps) * 1e3,
                "cards_median_ms": statistics.median(cards) * 1e3,
                "pages_median_ms": statistics.median(pages) * 1e3,
            }
            print(
                f"  {kind:<10} {due:>5} due: sweep {statistics.median(sweeps) * 1e3:8.2f} ms"
                f"  (cards {statistics.median(cards) * 1e3:8.1f} ms,"
                f" pages {statistics.median(pages) * 1e3:8.1f} ms)",
                flush=True,
            )
        pager.close()
        store.dispose()
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"one sweep, {args.open} open escalations (median of {args.repeat})")
    results = {kind: run_kind(kind, args.open, args.repeat) for kind in ("sqlite", "postgresql")}
    print(
        f"\n{'database':<12}{'due':>6}{'sweep median ms':>17}{'Slack cards ms':>16}"
        f"{'PagerDuty ms':>14}"
    )
    for kind, rows in results.items():
        for due, row in rows.items():  # type: ignore[union-attr]
            print(
                f"{kind:<12}{due:>6}{row['sweep_median_ms']:>17.2f}"
                f"{row['cards_median_ms']:>16.1f}{row['pages_median_ms']:>14.1f}"
            )
    print(f"saved {save('sweep', results)}")


if __name__ == "__main__":
    main()
