"""Tier 1, automated: how fast a signal stops a task, and how many signals a bot reads.

    .venv/bin/python bench/triggers.py [--firings 1000] [--seconds 8]

The bot's signal reader runs in a process of its own, as in `escbot serve` (its reading
thread and its firing threads), over a private redis-server with keyspace notifications
(so nothing polls); this process only sends and listens. On SQLite and PostgreSQL.

(a) A signal's `XADD` → its `pause:{task}` key set (a trigger with `then: [pause]`), for
    `--firings` tasks, one after the other: median and p99 ms.
(b) Sustained ingestion: signals at a steady rate against 50 triggers (sliding sums that
    do not fire), and every 100th signal a probe that fires a pause on a task of its own:
    the probes' p99 XADD → pause, and the rate the reader kept up with (nothing left
    unread at the end). Rates go up until the p99 passes 100 ms or the reader falls
    behind.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
import yaml

from bench.common import await_keyspace, database, percentile, save
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import parse_policy
from bot.signals import SignalReader
from tests.support.redis_server import PrivateRedis

TRIGGERS = 50
WARM_UP = 1.0  # seconds of each sustained run whose probes are not counted


def policy_yaml() -> str:
    triggers: list[dict[str, Any]] = [
        {"name": "probe", "signal": "probe", "above": 0, "then": ["pause"]},
    ]
    for i in range(TRIGGERS):
        triggers.append(
            {
                "name": f"load-{i}",
                "signal": f"s{i}",
                "sum_over": "1m",
                "above": 1e12,
                "then": ["pause"],
            }
        )
    return yaml.safe_dump(
        {
            "roles": {"operator": ["U0OPERATOR"], "admin": ["U0ADMIN1"]},
            "tiers": [{"name": "triage", "channel": "C0TRIAGE", "ack_timeout": "5m"}],
            "triggers": triggers,
        }
    )


def run_bot(url: str, redis_url: str, prefix: str, ready: Any, stop: Any) -> None:
    """The bot's side, in its own process: the signal reader until `stop` is set."""
    bot = Bot(url, redis_url, prefix)
    ready.set()
    stop.wait()
    bot.close()


class Bot:
    """The reader in a thread, over one database and the private Redis."""

    def __init__(self, url: str, redis_url: str, prefix: str) -> None:
        self.keys = KeyNames(prefix)
        self.client = connect(redis_url, timeout=5)
        self.store = Store.from_url(url)
        self.service = EscalationService(
            self.store, ControlPlane(self.client, self.keys), parse_policy(policy_yaml().encode())
        )
        self.reader = SignalReader(
            connect(redis_url, timeout=5), self.keys, self.service, consumer="bench", batch=500
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.reader.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.store.dispose()


def watch(rdb: redis.Redis, prefix: str) -> Any:
    watcher = rdb.pubsub()
    watcher.psubscribe(f"__keyspace@0__:{prefix}pause:*")
    watcher.get_message(timeout=1)
    return watcher


def firing_latency(rdb: redis.Redis, prefix: str, count: int) -> list[float]:
    watcher = watch(rdb, prefix)
    samples = []
    for i in range(-20, count):
        task = f"f-{uuid.uuid4().hex[:10]}"
        rdb.zadd(f"{prefix}tasks", {task: time.time()})
        channel = f"__keyspace@0__:{prefix}pause:{task}".encode()
        start = time.perf_counter()
        rdb.xadd(
            f"{prefix}agent-signals",
            {"task_id": task, "agent": "bench", "signal": "probe", "value": "1"},
        )
        await_keyspace(watcher, channel, f"pause of {task}")
        if i >= 0:
            samples.append(time.perf_counter() - start)
    watcher.close()
    return samples


def sustained(rdb: redis.Redis, prefix: str, rate: int, seconds: float) -> dict[str, float]:
    """Signals at `rate` a second for `seconds`; every 100th a probe that fires."""
    watcher = watch(rdb, prefix)
    tasks = [f"load-{i}" for i in range(TRIGGERS)]
    rdb.zadd(f"{prefix}tasks", {task: time.time() + 3600 for task in tasks})
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            message = watcher.get_message(timeout=0.5)
            if message is not None and message["type"] == "pmessage":
                started = sent.get(message["channel"])
                if started is not None and started - start >= WARM_UP:
                    latencies.append(time.perf_counter() - started)
            elif done.is_set():
                break

    stream = f"{prefix}agent-signals"
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    total = 0
    start = time.perf_counter()
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    while time.perf_counter() - start < seconds:
        pipe = rdb.pipeline(transaction=False)
        for _ in range(per_tick):
            total += 1
            if total % 100 == 0:
                task = f"p-{uuid.uuid4().hex[:10]}"
                pipe.zadd(f"{prefix}tasks", {task: time.time()})
                sent[f"__keyspace@0__:{prefix}pause:{task}".encode()] = time.perf_counter()
                pipe.xadd(stream, {"task_id": task, "agent": "b", "signal": "probe", "value": "1"})
            else:
                i = total % TRIGGERS
                pipe.xadd(stream, {"task_id": tasks[i], "agent": "b", "signal": f"s{i}"})
        pipe.execute()
        next_tick = start + (total / rate)
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    sending = time.perf_counter() - start
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lag = rdb.xinfo_groups(stream)[0].get("lag") or 0
        pending = rdb.xpending(stream, "escbot")["pending"]
        if lag == 0 and pending == 0:
            break
        time.sleep(0.05)
    drained = time.perf_counter() - start
    done.set()
    listener.join(10)
    watcher.close()
    return {
        "rate_sent": total / sending,
        "rate_read": total / drained,
        "probes": len(latencies),  # after the first WARM_UP seconds
        "p50_ms": statistics.median(latencies) * 1e3 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99) * 1e3 if latencies else float("nan"),
    }


def run_kind(kind: str, redis_url: str, firings: int, seconds: float) -> dict[str, Any]:
    rdb = redis.Redis.from_url(redis_url)
    prefix = f"bench:{uuid.uuid4().hex[:6]}:"
    result: dict[str, Any] = {}
    with database(kind) as url:
        context = multiprocessing.get_context("fork")
        ready, stop = context.Event(), context.Event()
        bot = context.Process(target=run_bot, args=(url, redis_url, prefix, ready, stop))
        bot.start()
        if not ready.wait(30):
            raise RuntimeError("the bot did not start")
        try:
            samples = firing_latency(rdb, prefix, firings)
            result["firing"] = {
                "median_ms": statistics.median(samples) * 1e3,
                "p99_ms": percentile(samples, 0.99) * 1e3,
            }
            print(
                f"  {kind:<10} signal → pause: median {result['firing']['median_ms']:.2f} ms,"
                f" p99 {result['firing']['p99_ms']:.2f} ms",
                flush=True,
            )
            result["sustained"] = {}
            for rate in (2000, 5000, 8000, 12000):
                row = sustained(rdb, prefix, rate, seconds)
                result["sustained"][str(rate)] = row
                print(
                    f"  {kind:<10} {rate:>6}/s asked: sent {row['rate_sent']:7.0f}/s, read "
                    f"{row['rate_read']:7.0f}/s, probe p50 {row['p50_ms']:6.1f} ms,"
                    f" p99 {row['p99_ms']:6.1f} ms",
                    flush=True,
                )
                if row["p99_ms"] > 100 or row["rate_read"] < 0.9 * row["rate_sent"]:
                    break
        finally:
            stop.set()
            bot.join(30)
    rdb.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--firings", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        private = PrivateRedis(Path(tmp), "--notify-keyspace-events", "K$")
        private.start()
        try:
            results = {
                kind: run_kind(kind, private.url, args.firings, args.seconds)
                for kind in ("sqlite", "postgresql")
            }
        finally:
            private.stop()
    print(f"saved {save('triggers', results)}")


if __name__ == "__main__":
    main()
