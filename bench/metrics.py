"""`/metrics` and `escbot report` with 100,000 escalations in the database, on SQLite and
PostgreSQL.

    .venv/bin/python bench/metrics.py [--escalations 100000] [--scrapes 300] [--repeat 3]

- Scrape: `GET /metrics` over the real HTTP server (waitress, the front of `escbot serve
  --http`), the gauges read from the database and Redis at every scrape (the one-second
  cache off: the worst case), and with the cache on. Baseline, same server, same run:
  `GET /healthz` (a database and a Redis ping). Target: p99 <= 50 ms.
- Report: `escbot report --since 30d` as an operator runs it (a process: start-up, the
  reads, the figures, the text), median of `--repeat`; and `--format html` once.
  Baseline, same run: `escbot report --since 1m` (the same process on a window that is
  almost empty). Target: <= 5 s.

The data: escalations spread over the last 30 days (2 % still open, 10 task types, 5
agents, confidences, edits, policy decisions, expiries), 2,000 pause/resume/abandon audit
rows, 1,000 reviews, 200 cards owed; 20,000 `cost` signals and 10,000 completed tasks in
the streams.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
import requests
from slack_bolt import App

from bench.common import REDIS_URL, database, save, summary
from bot.db import audit
from bot.db.models import EscalationRow, OutboxRow, ReviewRow
from bot.db.store import Store
from bot.keys import KeyNames
from bot.metrics import METRICS_PATH, ServiceMetrics, StateGauges
from bot.policy import parse_policy
from bot.serve import _metrics_answer
from bot.slack.front import SlackFront
from bot.slack.http import SlackHTTPServer
from tests.conftest import POLICY_YAML

ESCBOT = str(Path(sys.executable).parent / "escbot")
TASK_TYPES = [f"type-{i}" for i in range(10)]
AGENTS = [f"agent-{i}" for i in range(5)]
DECIDED = ["approved", "approved", "approved", "rejected", "terminated", "redirected", "expired"]


def seed(url: str, client: redis.Redis, prefix: str, count: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    store = Store.from_url(url)
    rows: list[dict[str, Any]] = []
    with store.transaction() as session:
        connection = session.connection()
        for i in range(count):
            created = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
            state = "open" if i % 50 == 0 else rng.choice(DECIDED)
            policy = state == "approved" and i % 5 == 0
            decided = (
                None if state == "open" else created + timedelta(seconds=rng.expovariate(1 / 600))
            )
            rows.append(
                {
                    "id": f"b{i:07d}",
                    "task_id": f"task-{i % 40000}",
                    "agent": AGENTS[i % len(AGENTS)],
                    "task_type": TASK_TYPES[i % len(TASK_TYPES)],
                    "kind": "approval",
                    "severity": ("low", "medium", "high", "critical")[i % 4],
                    "confidence": round(rng.random(), 2),
                    "reason": "bench",
                    "payload": {"task_id": f"task-{i % 40000}", "reason": "bench"},
                    "state": state,
                    "tier": "triage",
                    "tier_entered_at": created,
                    "created_at": created,
                    "policy_version": "bench",
                    "acknowledged_by": "U1" if i % 3 == 0 and state != "open" else None,
                    "acknowledged_at": created + timedelta(seconds=30) if i % 3 == 0 else None,
                    "decided_by": (
                        None if decided is None
                        else "policy" if policy or state == "expired" else "U1"
                    ),
                    "decided_at": decided,
                    "decision_rule": "actions.bench" if policy else None,
                    "edited_by": "U1" if state == "approved" and i % 7 == 0 else None,
                    "next_action_at": now + timedelta(minutes=5) if state == "open" else None,
                }
            )  # fmt: skip
            if len(rows) == 5000:
                connection.execute(EscalationRow.__table__.insert(), rows)
                rows = []
        if rows:
            connection.execute(EscalationRow.__table__.insert(), rows)
        connection.execute(
            OutboxRow.__table__.insert(),
            [
                {"topic": "card", "key": str(i), "wanted": "post", "next_attempt_at": now,
                 "created_at": now, "attempts": 0}
                for i in range(200)
            ],
        )  # fmt: skip
        connection.execute(
            ReviewRow.__table__.insert(),
            [
                {"subject": "task", "subject_id": f"r{i}", "task_id": f"task-{i}",
                 "agent": AGENTS[i % 5], "task_type": TASK_TYPES[i % 10], "rate": 0.1,
                 "summary": "bench", "created_at": now - timedelta(days=i % 30),
                 "verdict": ("flagged" if i % 9 == 0 else "looks_right") if i % 2 else None}
                for i in range(1000)
            ],
        )  # fmt: skip
        audit.append_many(
            session,
            [
                audit.Entry(now - timedelta(hours=i % 700), "U1",
                            ("pause", "resume", "abandon")[i % 3], "bench", f"task-{i}", None,
                            "bench", None, None)
                for i in range(2000)
            ],
        )  # fmt: skip
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load
        with store.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE"
            )
    store.dispose()
    keys = KeyNames(prefix)
    pipe = client.pipeline(transaction=False)
    for i in range(20000):
        pipe.xadd(keys.signals, {"task_id": f"task-{i % 10000}", "agent": AGENTS[i % 5],
                                 "signal": "cost", "value": "0.25"})  # fmt: skip
    for i in range(10000):
        pipe.xadd(keys.outcomes, {"task_id": f"task-{i}", "agent": AGENTS[i % 5],
                                  "task_type": TASK_TYPES[i % 10], "status": "completed",
                                  "source": "agent", "at": "x"})  # fmt: skip
    pipe.execute()


def scrape_bench(url: str, client: redis.Redis, prefix: str, scrapes: int) -> dict[str, Any]:
    store = Store.from_url(url)
    policy = parse_policy(POLICY_YAML.encode())
    results = {}
    for cached in (False, True):
        metrics = ServiceMetrics()
        for task_type in TASK_TYPES:  # series as a busy replica has them
            for severity in ("low", "medium", "high", "critical"):
                metrics.time_to_decision.labels(task_type, severity).observe(120)
                metrics.time_to_ack.labels(task_type, severity).observe(30)
                metrics.escalations.labels(task_type, severity, "approval").inc()
        gauges = StateGauges(
            store, client, KeyNames(prefix), lambda: policy, cache_seconds=1.0 if cached else 0
        )
        metrics.registry.register(gauges)
        app = App(token="xoxb-bench", signing_secret="bench", token_verification_enabled=False)
        front = SlackFront(app, "bench", lambda: _health(store, client))
        front.routes[METRICS_PATH] = lambda m=metrics: _metrics_answer(m)
        server = SlackHTTPServer(front, "127.0.0.1", 0)
        server.start()
        http = requests.Session()
        base = f"http://127.0.0.1:{server.port}"

        def get(path: str, http: requests.Session = http, base: str = base) -> None:
            response = http.get(base + path, timeout=10)
            assert response.status_code == 200, response.text

        for _ in range(20):
            get("/metrics")
            get("/healthz")
        samples: dict[str, list[float]] = {"/metrics": [], "/healthz": []}
        for _ in range(scrapes):
            for path in ("/metrics", "/healthz"):
                start = time.perf_counter()
                get(path)
                samples[path].append(time.perf_counter() - start)
        server.stop()
        http.close()
        name = "cached" if cached else "uncached"
        results[f"metrics_{name}"] = summary(samples["/metrics"])
        results[f"healthz_{name}"] = summary(samples["/healthz"])
    store.dispose()
    return results


def _health(store: Store, client: redis.Redis) -> dict[str, str]:
    store.ping()
    client.ping()
    return {"database": "ok", "redis": "ok"}


def report_bench(url: str, prefix: str, repeat: int) -> dict[str, Any]:
    env = os.environ | {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": prefix}

    def run(*args: str) -> float:
        start = time.perf_counter()
        done = subprocess.run(
            [ESCBOT, "report", *args], env=env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        assert done.returncode == 0, done.stderr
        return elapsed

    run("--since", "1m")  # warm the page cache and matplotlib's font cache
    base = [run("--since", "1m") for _ in range(repeat)]
    text = [run("--since", "30d") for _ in range(repeat)]
    html = run("--since", "30d", "--format", "html", "-o", os.devnull)
    return {
        "baseline_s": statistics.median(base),
        "text_s": statistics.median(text),
        "text_max_s": max(text),
        "html_s": html,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--escalations", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    results: dict[str, Any] = {"escalations": args.escalations}
    for kind in ("sqlite", "postgresql"):
        prefix = f"escbot-bench-metrics:{uuid.uuid4().hex[:8]}:"
        try:
            with database(kind) as url:
                started = time.perf_counter()
                seed(url, client, prefix, args.escalations)
                print(f"{kind}: seeded in {time.perf_counter() - started:.1f} s", flush=True)
                results[kind] = scrape_bench(url, client, prefix, args.scrapes)
                results[kind]["report"] = report_bench(url, prefix, args.repeat)
        finally:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
        _print(kind, results[kind])
    client.close()
    print(f"saved {save('metrics', results)}")


def _print(kind: str, r: dict[str, Any]) -> None:
    print(f"\n{kind}: GET over waitress    median    p99   x /healthz (p99)")
    for name in ("uncached", "cached"):
        m, h = r[f"metrics_{name}"], r[f"healthz_{name}"]
        print(f"  /metrics, {name:<9} {m['median_ms']:7.2f} ms {m['p99_ms']:6.2f} ms  "
              f"{m['p99_ms'] / h['p99_ms']:5.1f}")  # fmt: skip
        print(f"  /healthz, {name:<9} {h['median_ms']:7.2f} ms {h['p99_ms']:6.2f} ms")
    rep = r["report"]
    print(f"  escbot report --since 30d: {rep['text_s']:.2f} s (max {rep['text_max_s']:.2f} s), "
          f"html {rep['html_s']:.2f} s; --since 1m: {rep['baseline_s']:.2f} s "
          f"(x {rep['text_s'] / rep['baseline_s']:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
