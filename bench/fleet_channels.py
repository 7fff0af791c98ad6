"""How a process that runs many tasks should hear of one task's kill: the choice behind
the guards' shared subscriber, measured.

    .venv/bin/python bench/fleet_channels.py [--tasks 2500] [--kills 300]

One process holding `--tasks` tasks (a quarter of a 10,000-guard fleet), on a private
redis-server, two connections (one listening, one for commands), three ways:

- `control:{key}` channels (what the guards do): SUBSCRIBE to each task's key channels;
  the bot's `SET` + `PUBLISH control` + `PUBLISH control:{key}` with the value.
- `CLIENT TRACKING` (Redis's client-side caching, default mode, invalidations redirected
  to the listening connection): the process reads every key once so that Redis tracks
  it; a kill is a bare `SET`; the invalidation names the key, without its value, and
  tracking is one-shot, so the process reads the key again (which also tracks it again).
- `control` as the contract has it (every process hears of every change): the same
  listener subscribed to `control` only; the key is read after each message that names
  one of its tasks; the cost is in the messages about other processes' tasks.

Reported: from just before the write to the moment the process knows the new value
(median, p99), commands per kill, and Redis memory for the process's subscriptions or
tracking table.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from bench.common import percentile, save
from bot.control import ControlPlane, Effect
from bot.keys import KeyNames
from tests.support.redis_server import PrivateRedis

PREFIX = "chan:"
VALUE = {"reason": "bench", "by": "bench", "at": "2026-12-02T00:00:00Z", "escalation_id": None}


def task_keys(keys: KeyNames, task: str) -> list[str]:
    return [keys.kill(task), keys.pause(task), keys.inbox(task)]


def calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


def memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def wait_for(listener: Any, done: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = listener.get_message(timeout=1)
        if message is not None and done(message):
            return
    raise RuntimeError("no message within 5 s")


def per_key_channels(url: str, tasks: list[str], kills: int) -> dict[str, Any]:
    keys = KeyNames(PREFIX)
    admin = redis.Redis.from_url(url, decode_responses=True)
    bot = ControlPlane(redis.Redis.from_url(url, decode_responses=True), keys)
    listener = redis.Redis.from_url(url, decode_responses=True).pubsub()
    before = memory(admin)
    channels = [
        keys.announcements(k.removeprefix(PREFIX)) for t in tasks for k in task_keys(keys, t)
    ]
    for start in range(0, len(channels), 500):
        listener.subscribe(*channels[start : start + 500])
    for _ in channels:
        wait_for(listener, lambda m: m["type"] == "subscribe")
    used = memory(admin) - before
    samples, spent = [], 0
    for task in random.sample(tasks, kills):
        counted = calls(admin)
        start = time.perf_counter()
        bot.apply([Effect("kill", task, "set", VALUE)])
        wanted = keys.announcements(f"kill:{task}")
        got: list[Any] = []

        def value_of(message: dict[str, Any], wanted: str = wanted, got: list[Any] = got) -> bool:
            if message["type"] == "message" and message["channel"] == wanted:
                got.append(json.loads(message["data"])["value"])
                return True
            return False

        wait_for(listener, value_of)
        samples.append(time.perf_counter() - start)
        spent += calls(admin) - counted
        assert got and got[0]["reason"] == "bench"
    listener.close()
    return result(samples, spent / kills, used, len(channels))


def tracking(url: str, tasks: list[str], kills: int) -> dict[str, Any]:
    keys = KeyNames(PREFIX)
    admin = redis.Redis.from_url(url, decode_responses=True)
    writer = redis.Redis.from_url(url, decode_responses=True)
    # A bare socket speaking RESP: its id is needed for REDIRECT, and it only listens.
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"CLIENT ID\r\n")
    listener_id = int(sock.recv(64).strip().lstrip(b":"))
    sock.sendall(b"SUBSCRIBE __redis__:invalidate\r\n")
    sock.recv(256)

    class Listener:
        def get_message(self, timeout: float) -> dict[str, Any] | None:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return None
            return {"type": "message", "data": [sock.recv(65536).decode()]}

    listener = Listener()
    reader = redis.Redis.from_url(url, decode_responses=True, single_connection_client=True)
    reader.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id)
    before = memory(admin)
    tracked = [k for t in tasks for k in task_keys(keys, t)[:2]]  # strings: kill and pause
    for start in range(0, len(tracked), 1000):
        reader.mget(tracked[start : start + 1000])  # reading is what makes Redis track
    used = memory(admin) - before
    samples, spent = [], 0
    for task in random.sample(tasks, kills):
        counted = calls(admin)
        start = time.perf_counter()
        writer.set(keys.kill(task), json.dumps(VALUE))
        wanted = keys.kill(task)

        def invalidated(message: dict[str, Any], wanted: str = wanted) -> bool:
            data = message.get("data")
            return isinstance(data, list) and any(wanted in chunk for chunk in data)

        wait_for(listener, invalidated)
        value = reader.get(wanted)  # no value in an invalidation: read it (and track again)
        samples.append(time.perf_counter() - start)
        spent += calls(admin) - counted
        assert value is not None
    reader.execute_command("CLIENT", "TRACKING", "OFF")
    sock.close()
    return result(samples, spent / kills, used, len(tracked))


def contract_channel(url: str, tasks: list[str], kills: int, others: int) -> dict[str, Any]:
    """One `control` for all: this process's tasks are 1 in `others + 1` of the fleet's."""
    keys = KeyNames(PREFIX)
    admin = redis.Redis.from_url(url, decode_responses=True)
    bot = ControlPlane(redis.Redis.from_url(url, decode_responses=True), keys)
    reader = redis.Redis.from_url(url, decode_responses=True)
    listener = redis.Redis.from_url(url, decode_responses=True).pubsub()
    listener.subscribe(keys.control)
    wait_for(listener, lambda m: m["type"] == "subscribe")
    mine = {keys.kill(t) for t in tasks}
    samples, spent, foreign = [], 0, 0
    for task in random.sample(tasks, kills):
        for n in range(others):  # the other processes' kills reach this one too
            bot.apply([Effect("kill", f"elsewhere-{n}", "set", VALUE)])
        counted = calls(admin)
        start = time.perf_counter()
        bot.apply([Effect("kill", task, "set", VALUE)])
        while True:
            message = listener.get_message(timeout=1)
            if message is None or message["type"] != "message":
                continue
            if message["data"] in mine and message["data"] == keys.kill(task):
                break
            foreign += 1
        value = reader.get(keys.kill(task))
        samples.append(time.perf_counter() - start)
        spent += calls(admin) - counted
        assert value is not None
    listener.close()
    data = result(samples, spent / kills, 0, 1)
    data["messages_for_other_processes_per_kill"] = foreign / kills
    return data


def result(samples: list[float], commands: float, used: int, items: int) -> dict[str, Any]:
    return {
        "median_ms": statistics.median(samples) * 1e3,
        "p99_ms": percentile(samples, 0.99) * 1e3,
        "commands_per_kill": round(commands, 1),
        "redis_memory_bytes": used,
        "bytes_per_item": round(used / items, 1) if items else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2500)
    parser.add_argument("--kills", type=int, default=300)
    args = parser.parse_args()
    tasks = [f"task-{n}" for n in range(args.tasks)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, run in (
            ("control:{key} channels (the guards)", per_key_channels),
            ("CLIENT TRACKING, then GET", tracking),
            ("control only, then GET (3 other processes)", None),
        ):
            server = PrivateRedis(Path(folder))
            server.start()
            try:
                if run is None:
                    results[name] = contract_channel(server.url, tasks, args.kills, 3)
                else:
                    results[name] = run(server.url, tasks, args.kills)
            finally:
                server.stop()
    base = results["control:{key} channels (the guards)"]
    print("| way | median | p99 | x (median) | commands per kill | Redis memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['median_ms']:.3f} ms | {r['p99_ms']:.3f} ms | "
            f"{r['median_ms'] / base['median_ms']:.2f} | {r['commands_per_kill']:g} | "
            f"{r['redis_memory_bytes'] / 1024:,.0f} KiB ({r['bytes_per_item']:g} B each) |"
        )
    print(f"saved {save('fleet_channels', results)}")


if __name__ == "__main__":
    main()
