"""Reconcile (run every sweep) with 0, 1,000 and 10,000 decisions inside their keys' life.

    .venv/bin/python bench/reconcile.py [--repeat 50]

The common case, nothing lost: the recent decisions' keys are only counted (one EXISTS per
1,000 keys, in the pipeline that re-asserts kills). The ratio is against the same call
with no decisions at all, measured in the same run. Also timed: the rare case, every
decision key lost (read in full, written back with SET NX).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bench.common import REDIS_URL, database, save, summary, timed
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.models import EscalationRow
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import parse_policy
from tests.conftest import POLICY_YAML

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SIZES = (0, 1_000, 10_000)


def fill(store: Store, start: int, count: int, version: str) -> None:
    """`count` escalations decided over the last six days, plus as many older ones."""
    rows = []
    for i in range(start, start + 2 * count):
        recent = i % 2 == 0
        at = NOW - timedelta(days=6 if recent else 30, seconds=i)
        rows.append(
            {
                "id": f"bench-{i:07d}",
                "task_id": f"task-{i}",
                "agent": "bench-agent",
                "task_type": "refund",
                "kind": "approval",
                "severity": "high",
                "confidence": 0.5,
                "reason": "bench",
                "payload": {"task_id": "t", "reason": "bench"},
                "state": "approved",
                "tier": "triage",
                "tier_entered_at": at,
                "created_at": at,
                "policy_version": version,
                "decided_by": "U0BENCH",
                "decided_at": at,
            }
        )
    with store.transaction() as session:
        for offset in range(0, len(rows), 5000):
            session.execute(EscalationRow.__table__.insert(), rows[offset : offset + 5000])
    with store.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def run_kind(kind: str, repeat: int) -> dict[str, object]:
    policy = parse_policy(POLICY_YAML.encode())
    client = connect(REDIS_URL)
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    results: dict[str, object] = {}
    with database(kind) as url:
        store = Store.from_url(url)
        control = ControlPlane(client, KeyNames(prefix))
        service = EscalationService(store, control, policy, clock=lambda: NOW)
        baseline: float | None = None
        filled = 0
        for size in SIZES:
            fill(store, filled * 2, size - filled, policy.version)
            filled = size
            service.reconcile()  # writes every missing key: what follows is the common case
            common = summary(timed(lambda _i: service.reconcile(), repeat, warmup=5))
            baseline = baseline or common["median_ms"]

            def lose_all(i: int) -> None:
                keys = list(client.scan_iter(match=f"{prefix}decision:*", count=1000))
                if keys:
                    client.delete(*keys)

            lost = []
            for _ in range(max(3, repeat // 10)):
                lose_all(0)
                lost.append(timed(lambda _i: service.reconcile(), 1, warmup=0)[0])
            rare = summary(lost)
            results[str(size)] = {"common": common, "all_lost": rare}
            print(
                f"  {kind:<10} {size:>6} decisions: common median {common['median_ms']:7.2f} ms"
                f" p99 {common['p99_ms']:7.2f} ms (x{common['median_ms'] / baseline:.2f} of none);"
                f" all lost {rare['median_ms']:8.1f} ms",
                flush=True,
            )
        store.dispose()
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    print(f"reconcile, decisions in their keys' life (median of {args.repeat})")
    results = {kind: run_kind(kind, args.repeat) for kind in ("sqlite", "postgresql")}
    print(f"saved {save('reconcile', results)}")


if __name__ == "__main__":
    main()
