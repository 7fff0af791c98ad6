"""A signed `/agent kill` over HTTP to `escbot serve --http`, until `kill:` is in Redis.

    .venv/bin/python bench/slack_kill.py [--count 300] [--rounds 10]   # about 7 minutes

(a) kill latency: from sending the signed request to the key being set in Redis, over
    `--count` requests, for the bot on SQLite and on PostgreSQL, and for a bare Bolt
    handler that only does the SET (bench/bare_bolt.py), all three up at once:
    - one at a time: a kill to each server in turn, each once the previous kill is over
      (answered, announced, then 20 ms of quiet), so every server meets the same machine;
    - back to back: each server alone, each kill sent as soon as the previous one's key is
      set, so it meets the previous kill's commit, announcement and answer;
(b) ack times: 20 concurrent Approve clicks on one card, `--rounds` cards.

"Set in Redis" is Redis's own keyspace notification of the SET, on a private
redis-server: the bench does not poll, so it adds no load to what it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from redis.client import PubSub  # noqa: E402

from bench.common import await_keyspace, database, save, summary  # noqa: E402
from tests.conftest import ADMIN, OPERATOR, POLICY_YAML  # noqa: E402
from tests.support.factories import escalation_data  # noqa: E402
from tests.support.fake_slack import FakeSlack, Message  # noqa: E402
from tests.support.redis_server import PrivateRedis, free_port  # noqa: E402
from tests.support.slack_requests import SlackRequests  # noqa: E402

SECRET = "bench-signing-secret"
SETTLE = 0.02  # seconds of quiet after a kill's last visible work, before the next
LABELS = {
    "bare": "bare Bolt handler (SET only)",
    "sqlite": "escbot serve --http, sqlite",
    "postgresql": "escbot serve --http, postgresql",
}
ESCBOT = str(Path(sys.executable).with_name("escbot"))


@contextmanager
def running(command: list[str], env: dict[str, str], port: int, workdir: Path) -> Iterator[None]:
    log = (workdir / f"server-{port}.log").open("wb")
    process = subprocess.Popen(command, env=os.environ | env, cwd=workdir, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / f"server-{port}.log").read_text())
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(15)


@dataclass
class Server:
    """One server under test: where it listens, its own key prefix, whether a kill is
    announced in Slack (the bot's kills are, the bare handler's are not)."""

    name: str
    port: int
    prefix: str
    announces: bool
    signer: SlackRequests
    fake: FakeSlack  # its own: Slack's limit of a message a second is per channel


def one_kill(server: Server, watcher: PubSub) -> tuple[float, str]:
    """Seconds from sending a signed `/agent kill` to Redis's notice of its key's SET."""
    task = f"bench-{uuid.uuid4().hex[:12]}"
    channel = f"__keyspace@0__:{server.prefix}kill:{task}".encode()
    sender = threading.Thread(
        target=lambda: server.signer.slash_command(f"kill {task} bench", user_id=OPERATOR)
    )
    start = time.perf_counter()
    sender.start()
    await_keyspace(watcher, channel, f"{server.name}: SET of kill:{task}")
    elapsed = time.perf_counter() - start
    sender.join()
    return elapsed, task


def one_at_a_time(servers: list[Server], watcher: PubSub, count: int) -> dict[str, list[float]]:
    """Kills sent in turn to each server, each once the previous one is over (its answer
    in, its announcement posted, then `SETTLE`): one kill's own latency, every server
    under the same conditions as the machine drifts. Announcements leave at Slack's pace
    (a message a second in a channel), so a round takes about a second."""
    samples: dict[str, list[float]] = {server.name: [] for server in servers}
    for i in range(-20, count):  # 20 warm-up rounds
        for server in servers:
            elapsed, task = one_kill(server, watcher)
            if server.announces:
                server.fake.wait_for("chat.postMessage", lambda c, t=task: t in str(c.params), 10)
            time.sleep(SETTLE)
            server.fake.clear()
            if i >= 0:
                samples[server.name].append(elapsed)
    return samples


def back_to_back(server: Server, watcher: PubSub, count: int) -> list[float]:
    """Kills to one server, each sent as soon as the previous one's key is set: each
    meets the previous one's commit, announcement and answer still running."""
    for _ in range(20):
        one_kill(server, watcher)
    return [one_kill(server, watcher)[0] for _ in range(count)]


def wait_card(fake: FakeSlack, escalation_id: str) -> Message:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in fake.messages("C0TRIAGE"):
            if escalation_id in json.dumps(message.blocks):
                return message
        time.sleep(0.01)
    raise RuntimeError(f"no card for {escalation_id}")


def click_together(signer: SlackRequests, card: Message, clicks: int = 20) -> list[float]:
    """`clicks` Approve clicks on one card released at the same instant: each one's ack."""
    value = next(
        element["value"]
        for block in card.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "escalation.approve"
    )
    barrier = threading.Barrier(clicks)
    lock = threading.Lock()
    samples: list[float] = []

    def click(i: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        response = signer.click(
            action_id="escalation.approve",
            value=value,
            user_id=OPERATOR if i % 2 else ADMIN,
            channel_id=card.channel,
            message_ts=card.ts,
        )
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.text
        with lock:
            samples.append(elapsed)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(clicks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def ack_times(server: Server, rdb: redis.Redis, rounds: int) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        data = escalation_data()
        rdb.xadd(f"{server.prefix}escalations", {"payload": json.dumps(data)})
        card = wait_card(server.fake, data["escalation_id"])
        time.sleep(0.2)  # let the bot record the card's ts
        samples += click_together(server.signer, card)
    return samples


def ratio(row: dict[str, float], bare: dict[str, float]) -> dict[str, float]:
    return {"median": row["median_ms"] / bare["median_ms"], "p99": row["p99_ms"] / bare["p99_ms"]}


def print_kills(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"{title:<44}{'median ms':>10}{'p99 ms':>9}{'x bare (median)':>17}{'x bare (p99)':>14}")
    bare = rows["bare"]
    for name, row in rows.items():
        times = ratio(row, bare)
        print(
            f"{LABELS[name]:<44}{row['median_ms']:>10.2f}{row['p99_ms']:>9.2f}"
            f"{times['median']:>17.1f}{times['p99']:>14.1f}"
        )


def start_servers(stack: ExitStack, workdir: Path, redis_url: str, base: str) -> list[Server]:
    """The bare handler and the bot on SQLite and on PostgreSQL, all up at once, each on
    its own key prefix."""
    (workdir / "policy.yaml").write_text(POLICY_YAML)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "REDIS_URL": redis_url,
        "ESCBOT_POLICY": str(workdir / "policy.yaml"),
    }
    servers = []
    for name in LABELS:
        port, prefix = free_port(), f"{base}{name}:"
        fake = stack.enter_context(FakeSlack())
        env["SLACK_API_URL"] = fake.api_url
        if name == "bare":
            command = [sys.executable, str(ROOT / "bench" / "bare_bolt.py"), "--port", str(port)]
            extra = {}
        else:
            command = [ESCBOT, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
            extra = {"DATABASE_URL": stack.enter_context(database(name))}
        stack.enter_context(
            running(command, env | extra | {"REDIS_KEY_PREFIX": prefix}, port, workdir)
        )
        signer = SlackRequests(
            f"http://127.0.0.1:{port}/slack/events", SECRET, response_urls=fake.response_url
        )
        stack.callback(signer.close)
        servers.append(Server(name, port, prefix, name != "bare", signer, fake))
    return servers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    base = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        private = PrivateRedis(workdir, "--notify-keyspace-events", "K$")
        private.start()
        stack.callback(private.stop)
        rdb = redis.Redis.from_url(private.url)
        stack.callback(rdb.close)
        servers = start_servers(stack, workdir, private.url, base)
        watcher = rdb.pubsub()
        stack.callback(watcher.close)
        watcher.psubscribe(f"__keyspace@0__:{base}*")
        watcher.get_message(timeout=1)
        alone = one_at_a_time(servers, watcher, args.count)
        results["one_at_a_time"] = {name: summary(alone[name]) for name in LABELS}
        results["back_to_back"] = {
            server.name: summary(back_to_back(server, watcher, args.count)) for server in servers
        }
        results["ack_20_concurrent"] = {
            server.name: summary(ack_times(server, rdb, args.rounds))
            for server in servers
            if server.announces
        }
    for kind in ("one_at_a_time", "back_to_back"):
        rows = results[kind]
        results[f"{kind}_x_bare"] = {name: ratio(rows[name], rows["bare"]) for name in LABELS}
    print_kills("signed /agent kill → key in Redis, one at a time", results["one_at_a_time"])
    print()
    print_kills("the same, back to back", results["back_to_back"])
    print(
        f"\n{'ack time, 20 concurrent clicks on one card':<44}{'median ms':>10}{'p99 ms':>9}"
        f"{'max ms':>8}"
    )
    for name, row in results["ack_20_concurrent"].items():
        print(
            f"{LABELS[name]:<44}{row['median_ms']:>10.2f}{row['p99_ms']:>9.2f}{row['max_ms']:>8.2f}"
        )
    print(f"saved {save('slack_kill', results)}")


if __name__ == "__main__":
    main()
