"""The agent SDK: what a checkpoint costs, and how fast a kill reaches an agent.

    .venv/bin/python bench/agent.py [--count 1000]

(a) One `checkpoint()` against the original notes' check
    (`r.exists(f"kill:{id}") or r.exists("kill:all")`, two round trips): median ns per call;
    with the fleet heartbeat on (the default) against `heartbeat=False`, batches of the two
    interleaved in the same run (the heartbeat must cost a checkpoint nothing: within 10 %).
(b) Kill propagation: from just before `service.kill(...)` (SQLite) to the agent stopping,
    the agent being another process, as in production: a sync loop whose `checkpoint()`
    raises (one checkpoint every 0.5 ms), and an asyncio task cancelled mid-await by
    `AsyncTaskGuard.run`. Between kills the task is revived and the agent sees the revive;
    each kill comes at a random moment of the agent's step.
(c) The same with the push subscriber off (the guard re-reads every 10 ms; with push on
    it re-reads every second, the default), and the original notes' check at every step.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from escbot_agent import AsyncTaskGuard, TaskGuard, TaskKilled, is_killed

from bench.common import REDIS_URL, database, save, summary, timed
from bench.service import POLICY
from bot.control import ControlPlane, Effect, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import parse_policy

STEP = 0.0005  # seconds between two checkpoints of the sync agent
POLL = 0.010  # re-read interval with the push subscriber off
OPERATOR = "U0OPERATOR"

# (label, agent, push)
AGENTS = (
    ("push: sync guard raises", "sync", True),
    ("push: async task cancelled", "async", True),
    ("poll 10 ms: sync guard raises", "sync", False),
    ("poll 10 ms: async task cancelled", "async", False),
    ("notes' check at every step", "notes", False),
)


# ---------------------------------------------------------------------- (a) checkpoint


def checkpoint_cost(prefix: str, batches: int = 200, per_batch: int = 10_000) -> dict[str, float]:
    notes_client = redis.Redis.from_url(REDIS_URL)
    task = "bench-checkpoint"

    def notes_check(_i: int) -> bool:
        return bool(
            notes_client.exists(f"{prefix}kill:{task}") or notes_client.exists(f"{prefix}kill:all")
        )

    notes = statistics.median(timed(notes_check, 2000)) * 1e9
    one_trip = (
        statistics.median(timed(lambda _i: is_killed(notes_client, task, prefix=prefix), 2000))
        * 1e9
    )
    notes_client.close()

    # Heartbeats on (the default, refreshed every second here rather than 5 s, to give
    # the reader thread more to do) and off, batch for batch in the same run.
    with (
        TaskGuard(task, url=REDIS_URL, prefix=prefix, heartbeat_interval=1.0) as beating,
        TaskGuard(f"{task}-off", url=REDIS_URL, prefix=prefix, heartbeat=False) as quiet,
    ):
        on: list[float] = []
        off: list[float] = []
        for _ in range(batches):
            for guard, samples in ((beating, on), (quiet, off)):
                guard.checkpoint()
                start = time.perf_counter()
                for _ in range(per_batch):
                    guard.checkpoint()
                samples.append((time.perf_counter() - start) / per_batch)

    async def async_cost() -> tuple[float, float]:
        async with (
            AsyncTaskGuard(task, url=REDIS_URL, prefix=prefix, heartbeat_interval=1.0) as beating,
            AsyncTaskGuard(f"{task}-off", url=REDIS_URL, prefix=prefix, heartbeat=False) as quiet,
        ):
            on: list[float] = []
            off: list[float] = []
            for _ in range(batches):
                for guard, samples in ((beating, on), (quiet, off)):
                    await guard.checkpoint()
                    start = time.perf_counter()
                    for _ in range(per_batch):
                        await guard.checkpoint()
                    samples.append((time.perf_counter() - start) / per_batch)
        return statistics.median(on) * 1e9, statistics.median(off) * 1e9

    async_on, async_off = asyncio.run(async_cost())
    return {
        "notes_two_exists_ns": notes,
        "is_killed_one_exists_ns": one_trip,
        "checkpoint_ns": statistics.median(on) * 1e9,
        "checkpoint_no_heartbeat_ns": statistics.median(off) * 1e9,
        "async_checkpoint_ns": async_on,
        "async_checkpoint_no_heartbeat_ns": async_off,
    }


# ---------------------------------------------------------------------- (b, c) the agent


def agent_process(conn: Connection, kind: str, push: bool, prefix: str, task: str) -> None:
    """Runs in its own process: reports ("killed", t) and ("running", t), t monotonic ns."""
    if kind == "async":
        asyncio.run(async_agent(conn, push, prefix, task))
    elif kind == "notes":
        notes = redis.Redis.from_url(REDIS_URL)
        kill, kill_all = f"{prefix}kill:{task}", f"{prefix}kill:all"
        sync_agent(conn, lambda: bool(notes.exists(kill) or notes.exists(kill_all)))
    else:
        with TaskGuard(
            task, url=REDIS_URL, prefix=prefix, push=push, reread_interval=1.0 if push else POLL
        ) as guard:

            def killed() -> bool:
                try:
                    guard.checkpoint()
                except TaskKilled:
                    return True
                return False

            sync_agent(conn, killed)


def sync_agent(conn: Connection, killed: Callable[[], bool]) -> None:
    """A loop of short steps, checking at the top of each."""
    conn.send(("running", time.monotonic_ns()))
    was_killed = False
    while True:
        now_killed = killed()
        if now_killed != was_killed:
            was_killed = now_killed
            conn.send(("killed" if now_killed else "running", time.monotonic_ns()))
        time.sleep(STEP)


async def async_agent(conn: Connection, push: bool, prefix: str, task: str) -> None:
    async with AsyncTaskGuard(
        task, url=REDIS_URL, prefix=prefix, push=push, reread_interval=1.0 if push else POLL
    ) as guard:
        conn.send(("running", time.monotonic_ns()))
        while True:
            try:
                await guard.run(asyncio.sleep(3600))  # a long model call, no checkpoint
            except TaskKilled:
                conn.send(("killed", time.monotonic_ns()))
            while True:  # until revived
                try:
                    await guard.checkpoint()
                    break
                except TaskKilled:
                    await asyncio.sleep(STEP)
            conn.send(("running", time.monotonic_ns()))


def receive(conn: Connection, expected: str) -> int:
    if not conn.poll(30):
        raise RuntimeError(f"the agent did not report {expected!r} within 30 s")
    what, at = conn.recv()
    if what != expected:
        raise RuntimeError(f"the agent reported {what!r}, expected {expected!r}")
    return at


class TimedControlPlane(ControlPlane):
    """Notes when the service starts writing Redis (SET + PUBLISH), to split the latency
    into the service's share and the announcement's and agent's."""

    writing_at = 0

    def apply(self, effects: Sequence[Effect]) -> list[str]:
        self.writing_at = time.monotonic_ns()
        return super().apply(effects)


def propagation(
    service: EscalationService, prefix: str, kind: str, push: bool, count: int, warmup: int = 20
) -> dict[str, list[float]]:
    """Seconds from just before service.kill to the agent stopping, and its two parts."""
    task = f"bench-{kind}-{'push' if push else 'poll'}"
    control = service.control
    assert isinstance(control, TimedControlPlane)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=agent_process, args=(child, kind, push, prefix, task))
    process.start()
    samples: dict[str, list[float]] = {"total": [], "service": [], "agent": []}
    try:
        receive(parent, "running")
        for i in range(warmup + count):
            time.sleep(random.uniform(0, 2 * STEP))  # any moment of the agent's step
            start = time.monotonic_ns()
            service.kill(task, OPERATOR, "bench")
            stopped = receive(parent, "killed")
            if i >= warmup:
                samples["total"].append((stopped - start) / 1e9)
                samples["service"].append((control.writing_at - start) / 1e9)
                samples["agent"].append((stopped - control.writing_at) / 1e9)
            service.revive(task, OPERATOR)
            receive(parent, "running")
    finally:
        process.terminate()
        process.join(10)
    return samples


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--checkpoint-only", action="store_true", help="(a) only: no kill propagation"
    )
    args = parser.parse_args()
    client = connect(REDIS_URL)
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    results: dict[str, Any] = {}
    try:
        cost = checkpoint_cost(prefix)
        results["checkpoint"] = cost
        if not args.checkpoint_only:
            propagations(client, prefix, args.count, results)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()
    if args.checkpoint_only:
        report_cost(cost)
        return
    report(cost, results, args.count)
    print(f"saved {save('agent', results)}")


def propagations(client: redis.Redis, prefix: str, count: int, results: dict[str, Any]) -> None:
    with database("sqlite") as url:
        store = Store.from_url(url)
        service = EscalationService(
            store, TimedControlPlane(client, KeyNames(prefix)), parse_policy(POLICY)
        )
        for label, kind, push in AGENTS:
            samples = propagation(service, prefix, kind, push, count)
            results[label] = {part: summary(values) for part, values in samples.items()}
        store.dispose()


def report_cost(cost: dict[str, float]) -> None:
    notes = cost["notes_two_exists_ns"]
    print(f"(a) one check, median ns per call{'':<13}{'ns':>10}{'x cheaper than notes':>22}")
    for name, key in (
        ("original notes' check (2 x EXISTS)", "notes_two_exists_ns"),
        ("is_killed() (1 x EXISTS, 2 keys)", "is_killed_one_exists_ns"),
        ("TaskGuard.checkpoint()", "checkpoint_ns"),
        ("TaskGuard.checkpoint(), heartbeat=False", "checkpoint_no_heartbeat_ns"),
        ("await AsyncTaskGuard.checkpoint()", "async_checkpoint_ns"),
        ("await ...checkpoint(), heartbeat=False", "async_checkpoint_no_heartbeat_ns"),
    ):
        print(f"{name:<46}{cost[key]:>10.0f}{notes / cost[key]:>22.1f}")
    for label, on, off in (
        ("sync", "checkpoint_ns", "checkpoint_no_heartbeat_ns"),
        ("asyncio", "async_checkpoint_ns", "async_checkpoint_no_heartbeat_ns"),
    ):
        ratio = cost[on] / cost[off]
        verdict = "meets" if ratio <= 1.10 else "misses"
        print(
            f"heartbeat on / off, {label}: {cost[on]:.0f} / {cost[off]:.0f} ns = {ratio:.3f} "
            f"({verdict} the 10 % bound)"
        )


def report(cost: dict[str, float], results: dict[str, Any], count: int) -> None:
    report_cost(cost)
    print(f"\n(b, c) kill propagation, {count} kills (SQLite): ms from just before service.kill")
    print(
        f"{'agent':<34}{'median':>8}{'p99':>8}{'max':>8}"
        f"{'| service':>10}{'p99':>7}{'| write->agent':>15}{'p99':>7}"
    )
    worst = 0.0
    for label, _kind, push in AGENTS:
        row = results[label]
        total, service, agent = row["total"], row["service"], row["agent"]
        if push:
            worst = max(worst, total["p99_ms"])
        print(
            f"{label:<34}{total['median_ms']:>8.2f}{total['p99_ms']:>8.2f}{total['max_ms']:>8.2f}"
            f"{service['median_ms']:>10.2f}{service['p99_ms']:>7.2f}"
            f"{agent['median_ms']:>15.2f}{agent['p99_ms']:>7.2f}"
        )
    ratio = cost["notes_two_exists_ns"] / cost["checkpoint_ns"]
    print(
        f"\ncheckpoint {ratio:.0f}x cheaper than two EXISTS "
        f"({'meets' if ratio >= 50 else 'misses'} the 50x target); "
        f"push propagation p99 {worst:.2f} ms "
        f"({'meets' if worst < 5 else 'misses'} the 5 ms target)"
    )


if __name__ == "__main__":
    main()
