"""The fleet: many guards in a few processes on one Redis, and how a kill reaches them.

    .venv/bin/python bench/fleet.py [--sizes 100,1000,10000] [--kills 30] [--baseline REV]

For each N, each fleet runs in 4 processes (`bench/fleet_worker.py`) on a private
redis-server (so that `CLIENT LIST` and `INFO commandstats` count only the fleet, and
10,000 guards of the old kind, two connections each, fit under its `maxclients`):

- the guard of commit `--baseline` (the guard before it shared one subscriber per
  process), asyncio and threads (threads up to `--sync-max` guards);
- the original notes' polling: each agent checks `exists(kill:{id})` or
  `exists(kill:all)` every second, one client per process;
- the guard as it is now, asyncio and threads.

Measured per fleet: Redis connections once all guards run (`CLIENT LIST`), memory per
guard (RSS before and after the agents started), commands per second while nothing
happens, `--kills` kills of one task each among the N live ones (from just before the
bot's `ControlPlane.apply` to that agent's `TaskKilled`; and Redis commands per kill),
then `kill all` (the same, for every guard: p50 / p99 / max, and commands). The kills
are written by the bot's own `ControlPlane`, so they are announced the way the bot
announces them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.common import percentile, save  # noqa: E402
from bot.clock import iso, utcnow  # noqa: E402
from bot.control import ControlPlane, Effect  # noqa: E402
from bot.keys import KeyNames  # noqa: E402
from tests.support.redis_server import PrivateRedis  # noqa: E402

PROCESSES = 4
WORKER = Path(__file__).resolve().parent / "fleet_worker.py"
CONTROLLER = "bench-fleet-controller"
BASELINE = "4dade94"  # the last commit whose guards each held their own subscriber
OWN_COMMANDS = {"info", "client|list", "client|setname", "hello", "ping", "select"}


@dataclass(frozen=True)
class Fleet:
    label: str
    mode: str
    root: Path
    slug: str


@dataclass
class Worker:
    process: subprocess.Popen[str]
    ready: dict[str, Any] | None = None
    raised: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self.lock:
                if message.get("ready"):
                    self.ready = message
                self.raised.update(message.get("raised", {}))
                self.errors.extend(message.get("errors", []))


def raise_file_limit() -> None:
    """Room for 20,000 connections in the private server (it inherits the limit)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def baseline_tree(revision: str) -> Iterator[Path]:
    """The project's `bot/` package as of `revision`, in a folder of its own."""
    with tempfile.TemporaryDirectory(prefix="escbot-fleet-baseline-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "bot"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    calls = {}
    for name, values in stats.items():
        command = name.removeprefix("cmdstat_")
        if command not in OWN_COMMANDS:
            calls[command] = int(values["calls"])
    return calls


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    changed = {name: after[name] - before.get(name, 0) for name in after}
    return {name: count for name, count in changed.items() if count}


def fleet_connections(client: redis.Redis) -> int:
    return sum(1 for entry in client.client_list() if entry.get("name") != CONTROLLER)


def control_value() -> dict[str, Any]:
    return {"reason": "bench", "by": "bench", "at": iso(utcnow()), "escalation_id": None}


def stats_ms(samples_ns: list[int]) -> dict[str, float]:
    if not samples_ns:
        return {"n": 0}
    ms = [value / 1e6 for value in samples_ns]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 0.5),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
    }


def run_fleet(
    fleet: Fleet, size: int, url: str, client: redis.Redis, kills: int, prefix: str
) -> dict[str, Any]:
    keys = KeyNames(prefix)
    control = ControlPlane(client, keys)
    tag = f"{fleet.slug}{size}"
    if fleet.mode == "guard-sync":  # each agent waits at its checkpoint: a kill ends it
        control.apply([Effect("pause", "agent:bench-fleet", "set", control_value())])
    per_process = size // PROCESSES
    workers = []
    for index in range(PROCESSES):
        process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                f"--mode={fleet.mode}",
                f"--count={per_process}",
                f"--index={index}",
                f"--tag={tag}",
                f"--url={url}",
                f"--prefix={prefix}",
                f"--root={fleet.root}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        worker = Worker(process)
        threading.Thread(target=worker.read, daemon=True).start()
        workers.append(worker)
    result: dict[str, Any] = {"guards": per_process * PROCESSES}
    try:
        deadline = time.monotonic() + 600
        while not all(w.ready for w in workers):
            if time.monotonic() > deadline or any(w.process.poll() is not None for w in workers):
                raise RuntimeError(f"{fleet.label} x {size}: the agents did not all start")
            time.sleep(0.2)
        result["start_s"] = max(w.ready["start_s"] for w in workers if w.ready)
        memory = sum(w.ready["rss_after"] - w.ready["rss_before"] for w in workers if w.ready)
        result["memory_per_guard_kib"] = memory / result["guards"] / 1024
        time.sleep(2.0)  # first reads and heartbeats done
        result["connections"] = fleet_connections(client)
        result["connections_per_process"] = result["connections"] / PROCESSES

        before, began = command_calls(client), time.monotonic()
        time.sleep(5.0)
        idle = delta(command_calls(client), before)
        idle_seconds = time.monotonic() - began
        idle_rate = sum(idle.values()) / idle_seconds
        result["idle_commands_per_s"] = round(idle_rate)
        result["idle_by_command_per_s"] = {k: round(v / idle_seconds) for k, v in idle.items()}

        tasks = [f"{tag}-{p}-{i}" for p in range(PROCESSES) for i in range(per_process)]
        owner = {task: workers[int(task.split("-")[-2])] for task in tasks}
        chosen = random.sample(tasks, min(kills, len(tasks)))
        one: list[int] = []
        commands = mgets = 0.0
        for task in chosen:
            time.sleep(random.uniform(0.02, 0.1))
            before, began = command_calls(client), time.monotonic()
            start = time.monotonic_ns()
            control.apply([Effect("kill", task, "set", control_value())])
            worker = owner[task]
            stop_at = time.monotonic() + 15
            while time.monotonic() < stop_at:
                with worker.lock:
                    at = worker.raised.get(task)
                if at is not None:
                    one.append(at - start)
                    break
                time.sleep(0.002)
            used = delta(command_calls(client), before)
            spent = time.monotonic() - began
            commands += sum(used.values()) - idle_rate * spent
            mgets += used.get("mget", 0) - idle.get("mget", 0) / idle_seconds * spent
        result["one_task_kill"] = stats_ms(one)
        result["one_task_kill"]["missed"] = len(chosen) - len(one)
        result["commands_per_one_task_kill"] = round(commands / max(1, len(chosen)), 1)
        result["mgets_per_one_task_kill"] = round(mgets / max(1, len(chosen)), 1)

        rest = [task for task in tasks if task not in set(chosen)]
        before, began = command_calls(client), time.monotonic()
        start = time.monotonic_ns()
        control.apply([Effect("kill", "all", "set", control_value())])
        stop_at = time.monotonic() + 60
        while time.monotonic() < stop_at:
            if sum(len(w.raised) for w in workers) >= len(tasks):
                break
            time.sleep(0.01)
        spent = time.monotonic() - began
        used = delta(command_calls(client), before)
        raised = {}
        for worker in workers:
            with worker.lock:
                raised.update(worker.raised)
        all_ns = [raised[task] - start for task in rest if task in raised]
        result["kill_all"] = stats_ms(all_ns)
        result["kill_all"]["missed"] = len(rest) - len(all_ns)
        # the stopped agents close their guards meanwhile: those writes are counted too
        result["commands_during_kill_all"] = round(sum(used.values()) - idle_rate * spent)
        result["mgets_during_kill_all"] = round(
            used.get("mget", 0) - idle.get("mget", 0) / idle_seconds * spent
        )
        result["kill_all_window_s"] = round(spent, 2)
        result["kill_all_by_command"] = dict(sorted(used.items(), key=lambda kv: -kv[1])[:6])
        result["errors"] = [e for w in workers for e in w.errors][:5]
    finally:
        for worker in workers:
            try:
                assert worker.process.stdin is not None
                worker.process.stdin.write("stop\n")
                worker.process.stdin.flush()
            except OSError:
                pass
        for worker in workers:
            try:
                worker.process.wait(60)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(10)
        remove_prefix(client, prefix)
    return result


def remove_prefix(client: redis.Redis, prefix: str) -> None:
    found = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(found), 500):
        client.delete(*found[start : start + 500])


def ms(stats: dict[str, Any], key: str) -> str:
    return f"{stats[key]:,.1f} ms" if key in stats else "-"


def times(base: dict[str, Any] | None, measured: dict[str, Any], part: str) -> str:
    """How many times faster than today's guard (p99), measured in the same run."""
    if base is None or "p99_ms" not in base.get(part, {}) or not measured[part].get("p99_ms"):
        return "-"
    return f"{base[part]['p99_ms'] / measured[part]['p99_ms']:.1f}"


def one_kill_row(label: str, size: int, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    one = r["one_task_kill"]
    return (
        f"| {label} | {size:,} | {r['connections']:,} ({r['connections_per_process']:g}) | "
        f"{r['memory_per_guard_kib']:.1f} KiB | {r['idle_commands_per_s']:,} | "
        f"{ms(one, 'p50_ms')} | {ms(one, 'p99_ms')} | {times(base, r, 'one_task_kill')} | "
        f"{one.get('missed', 0)} | {r['commands_per_one_task_kill']:g} | "
        f"{r['mgets_per_one_task_kill']:g} |"
    )


def kill_all_row(label: str, size: int, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    everyone = r["kill_all"]
    return (
        f"| {label} | {size:,} | {ms(everyone, 'p50_ms')} | {ms(everyone, 'p99_ms')} | "
        f"{ms(everyone, 'max_ms')} | {times(base, r, 'kill_all')} | {everyone.get('missed', 0)} | "
        f"{r['commands_during_kill_all']:,} | {r['mgets_during_kill_all']:,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--sync-max", type=int, default=1000, help="threads: today's guard")
    parser.add_argument("--only", default="", help="comma-separated slugs of the fleets to run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    raise_file_limit()
    results: dict[str, Any] = {"sizes": sizes, "processes": PROCESSES, "baseline": args.baseline}
    with tempfile.TemporaryDirectory() as folder, baseline_tree(args.baseline) as old:
        server = PrivateRedis(Path(folder), "--maxclients", "30000")
        server.start()
        client = redis.Redis.from_url(server.url, decode_responses=True, client_name=CONTROLLER)
        fleets = [
            Fleet("today's guard, asyncio", "guard-async", old, "ta"),
            Fleet("today's guard, threads", "guard-sync", old, "ts"),
            Fleet("notes' polling (1 s), asyncio", "poll-async", ROOT, "pa"),
            Fleet("shared guard, asyncio", "guard-async", ROOT, "na"),
            Fleet("shared guard, threads", "guard-sync", ROOT, "ns"),
        ]
        if args.only:
            fleets = [f for f in fleets if f.slug in args.only.split(",")]
        run_prefix = f"bench-fleet:{uuid.uuid4().hex[:6]}:"
        try:
            for size in sizes:
                for fleet in fleets:
                    if fleet.slug == "ts" and size > args.sync_max:
                        continue
                    print(f"{fleet.label} x {size} ...", file=sys.stderr, flush=True)
                    prefix = f"{run_prefix}{fleet.slug}{size}:"
                    try:
                        measured = run_fleet(fleet, size, server.url, client, args.kills, prefix)
                    except RuntimeError as exc:
                        measured = {"failed": str(exc)}
                    results.setdefault(fleet.slug, {})[str(size)] = measured
                    print(json.dumps(measured), file=sys.stderr, flush=True)
        finally:
            client.close()
            server.stop()
    report(results, fleets, sizes)
    print(f"saved {save('fleet', results)}")


def report(results: dict[str, Any], fleets: list[Fleet], sizes: list[int]) -> None:
    tables = (
        (
            "| fleet | guards | Redis connections (per process) | memory per guard | "
            "commands/s, idle | one task's kill, p50 | p99 | x faster (p99) | missed | "
            "commands per kill | MGETs per kill |",
            one_kill_row,
        ),
        (
            "| fleet | guards | kill all, p50 | p99 | max | x faster (p99) | missed | "
            "commands | MGETs |",
            kill_all_row,
        ),
    )
    for header, make_row in tables:
        print()
        print(header)
        print("|" + " --- |" * (header.count("|") - 1))
        for size in sizes:
            base = results.get("ta", {}).get(str(size))
            if base is not None and "failed" in base:
                base = None
            for fleet in fleets:
                measured = results.get(fleet.slug, {}).get(str(size))
                if measured is None:
                    continue
                if "failed" in measured:
                    print(f"| {fleet.label} | {size:,} | {measured['failed']} |")
                    continue
                print(make_row(fleet.label, size, measured, base))


if __name__ == "__main__":
    if os.environ.get("ESCBOT_BENCH_SEED"):
        random.seed(int(os.environ["ESCBOT_BENCH_SEED"]))
    main()
