"""One process of the fleet benchmark (`bench/fleet.py` starts four): `--count` agents,
each holding a guard (or polling, as the original notes do), until told to stop.

    python bench/fleet_worker.py --mode guard-async --count 2500 --url … --prefix … [--root DIR]

`--root` puts another tree of the project first on `sys.path`, so the same run can
measure the guard of an earlier commit. Talks JSON lines: stdout says `ready` (with the
memory before and after the agents started) and, every 20 ms, which agents have raised
`TaskKilled` (or seen their kill, when polling) and when (`time.monotonic_ns()`, the same
clock in every process); stdin takes `stop`.

Modes:
- `guard-async`: an `AsyncTaskGuard` per agent, each agent awaiting a long call under
  `guard.run(...)`: a kill cancels it.
- `guard-sync`: a `TaskGuard` per agent thread, the agent held at its checkpoint by the
  agent-wide pause the bench sets first: a kill makes the waiting checkpoint raise.
- `poll-async`, `poll-sync`: no guard; each agent checks `r.exists(kill:{id})` or
  `r.exists(kill:all)` every `--interval` seconds on one client per process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

AGENT = "bench-fleet"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Reporter:
    """Collects (task id, when it stopped) and writes them out in batches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raised: dict[str, int] = {}
        self.errors: list[str] = []

    def stopped(self, task: str) -> None:
        at = time.monotonic_ns()
        with self.lock:
            self.raised[task] = at

    def failed(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(text)

    def flush(self) -> None:
        with self.lock:
            raised, self.raised = self.raised, {}
            errors, self.errors = self.errors, []
        if raised or errors:
            emit({"raised": raised, "errors": errors})

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.02):
            self.flush()
        self.flush()


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def task_ids(args: argparse.Namespace) -> list[str]:
    return [f"{args.tag}-{args.index}-{i}" for i in range(args.count)]


# ---------------------------------------------------------------------- asyncio


async def async_main(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from bot.agent import AsyncTaskGuard, TaskKilled

    ready = asyncio.Event()
    started = 0
    tasks = task_ids(args)
    gate = asyncio.Semaphore(100)  # guards starting at once, per process

    def one_started() -> None:
        nonlocal started
        started += 1
        if started == len(tasks):
            ready.set()

    async def guarded(task: str) -> None:
        try:
            async with gate:
                guard = AsyncTaskGuard(
                    task,
                    url=args.url,
                    prefix=args.prefix,
                    agent=AGENT,
                    socket_timeout=10.0,
                )
                await guard.start()
            one_started()
            try:
                await guard.run(asyncio.sleep(24 * 3600))  # a long call, no checkpoint
            except TaskKilled:
                reporter.stopped(task)
            finally:
                await guard.aclose()
        except Exception as exc:  # counted, and the run goes on
            reporter.failed(f"{task}: {type(exc).__name__}: {exc}")
            one_started()

    # The notes' one client per process; a bounded pool, as a fleet this size needs.
    pool = aioredis.BlockingConnectionPool.from_url(args.url, max_connections=20, timeout=30)
    client = aioredis.Redis(connection_pool=pool, socket_timeout=10.0)
    kill_all = f"{args.prefix}kill:all"

    async def polling(task: str) -> None:
        kill = f"{args.prefix}kill:{task}"
        one_started()
        await asyncio.sleep(random.uniform(0, args.interval))  # agents start at any time
        while True:
            try:
                if await client.exists(kill) or await client.exists(kill_all):
                    reporter.stopped(task)
                    return
            except Exception as exc:
                reporter.failed(f"{task}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(args.interval)

    before = rss_bytes()
    began = time.monotonic()
    agent = guarded if args.mode == "guard-async" else polling
    running = [asyncio.create_task(agent(task)) for task in tasks]
    await ready.wait()
    info = {"ready": True, "rss_before": before, "rss_after": rss_bytes()}
    info["start_s"] = time.monotonic() - began
    emit(info)
    await asyncio.to_thread(sys.stdin.readline)  # `stop`
    for job in running:
        job.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    await client.aclose()
    return info


# ---------------------------------------------------------------------- threads


def sync_main(args: argparse.Namespace, reporter: Reporter) -> None:
    import redis

    from bot.agent import TaskGuard, TaskKilled

    tasks = task_ids(args)
    stop = threading.Event()
    started = threading.Semaphore(0)
    pool = redis.BlockingConnectionPool.from_url(args.url, max_connections=20, timeout=30)
    client = redis.Redis(connection_pool=pool, socket_timeout=10.0)
    kill_all = f"{args.prefix}kill:all"

    def guarded(task: str) -> None:
        try:
            guard = TaskGuard(
                task, url=args.url, prefix=args.prefix, agent=AGENT, socket_timeout=10.0
            )
            with guard:
                started.release()
                while not stop.is_set():
                    try:
                        guard.checkpoint()  # held here by the agent-wide pause
                    except TaskKilled:
                        reporter.stopped(task)
                        return
                    stop.wait(0.5)
        except Exception as exc:
            reporter.failed(f"{task}: {type(exc).__name__}: {exc}")
            started.release()

    def polling(task: str) -> None:
        kill = f"{args.prefix}kill:{task}"
        started.release()
        stop.wait(random.uniform(0, args.interval))
        while not stop.is_set():
            try:
                if client.exists(kill) or client.exists(kill_all):
                    reporter.stopped(task)
                    return
            except Exception as exc:
                reporter.failed(f"{task}: {type(exc).__name__}: {exc}")
            stop.wait(args.interval)

    before = rss_bytes()
    began = time.monotonic()
    agent = guarded if args.mode == "guard-sync" else polling
    threads = []
    for task in tasks:
        thread = threading.Thread(target=agent, args=(task,), daemon=True)
        thread.start()
        threads.append(thread)
    for _ in tasks:
        started.acquire()
    emit(
        {
            "ready": True,
            "rss_before": before,
            "rss_after": rss_bytes(),
            "start_s": time.monotonic() - began,
        }
    )
    sys.stdin.readline()  # `stop`
    stop.set()
    for thread in threads:
        thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    warnings.simplefilter("ignore", DeprecationWarning)  # bot.agent's, once it moved
    threading.stack_size(256 * 1024)  # thousands of threads: keep their stacks small
    reporter = Reporter()
    stop = threading.Event()
    flusher = threading.Thread(target=reporter.run, args=(stop,), daemon=True)
    flusher.start()
    try:
        if args.mode.endswith("-async"):
            asyncio.run(async_main(args, reporter))
        else:
            sync_main(args, reporter)
    finally:
        stop.set()
        flusher.join(2)


if __name__ == "__main__":
    main()
