"""Kill and decision through the service on SQLite and PostgreSQL, against a bare SET.

    .venv/bin/python bench/service.py [--count 1000]

A kill through the service is: role check, kill state and audit row in one transaction,
`SET kill:{id}` and `PUBLISH control` in one Redis round trip, commit. The baseline is
the original notes' kill: one bare `SET kill:{id}`.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from bench.common import REDIS_URL, database, save, summary, timed
from bot.contracts import Escalation
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import parse_policy

POLICY = b"""
roles: {operator: [U0OPERATOR], admin: [U0ADMIN]}
tiers: [{name: triage, channel: C0TRIAGE, ack_timeout: 5m}]
"""


def bench_kind(kind: str, count: int, client: redis.Redis, prefix: str) -> dict[str, object]:
    with database(kind) as url:
        store = Store.from_url(url)
        service = EscalationService(
            store, ControlPlane(client, KeyNames(prefix)), parse_policy(POLICY)
        )
        kills = timed(lambda i: service.kill(f"task-{kind}-{i}", "U0OPERATOR", "bench"), count)
        opened = [
            service.open_escalation(
                Escalation(task_id=f"task-{kind}-e{i}", reason="bench", escalation_id=None)
            )[0].id
            for i in range(count + 50)
        ]
        decisions = timed(lambda i: service.decide(opened[i], "U0OPERATOR", "approve"), count)
        store.dispose()
    return {"kill": summary(kills), "decision": summary(decisions)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    client = connect(REDIS_URL)
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    try:
        bare = summary(timed(lambda i: client.set(f"{prefix}kill:bare-{i}", "{}"), args.count))
        results: dict[str, object] = {"bare_set": bare}
        for kind in ("sqlite", "postgresql"):
            results[kind] = bench_kind(kind, args.count, client, prefix)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()

    print(f"{'operation':<28}{'median ms':>11}{'p99 ms':>10}{'x bare SET (median)':>22}")
    print(f"{'bare SET kill:{id}':<28}{bare['median_ms']:>11.3f}{bare['p99_ms']:>10.3f}{1:>22.1f}")
    for kind in ("sqlite", "postgresql"):
        for op in ("kill", "decision"):
            row = results[kind][op]  # type: ignore[index]
            ratio = row["median_ms"] / bare["median_ms"]
            print(
                f"{op + ' via service (' + kind + ')':<28}{row['median_ms']:>11.3f}"
                f"{row['p99_ms']:>10.3f}{ratio:>22.1f}"
            )
    pg_kill = results["postgresql"]["kill"]["p99_ms"]  # type: ignore[index]
    verdict = "meets" if pg_kill < 5 else "misses"
    print(f"\nkill p99 on PostgreSQL: {pg_kill:.3f} ms ({verdict} the 5 ms target)")
    print(f"saved {save('service', results)}")


if __name__ == "__main__":
    main()
