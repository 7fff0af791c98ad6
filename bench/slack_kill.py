"""A signed `/agent kill` over HTTP to `escbot serve --http`, until `kill:` is in Redis.

    .venv/bin/python bench/slack_kill.py [--count 500] [--rounds 10]

(a) kill latency: from sending the signed request to the key being set in Redis, over
    `--count` requests, for the bot on SQLite and on PostgreSQL, and for a bare Bolt
    handler that only does the SET (bench/bare_bolt.py), measured in the same run;
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
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench.common import database, save, summary  # noqa: E402
from tests.conftest import ADMIN, OPERATOR, POLICY_YAML  # noqa: E402
from tests.support.factories import escalation_data  # noqa: E402
from tests.support.fake_slack import FakeSlack, Message  # noqa: E402
from tests.support.redis_server import PrivateRedis, free_port  # noqa: E402
from tests.support.slack_requests import SlackRequests  # noqa: E402

SECRET = "bench-signing-secret"
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


def kill_latency(
    port: int, rdb: redis.Redis, prefix: str, count: int, fake: FakeSlack
) -> list[float]:
    signer = SlackRequests(
        f"http://127.0.0.1:{port}/slack/events", SECRET, response_urls=fake.response_url
    )
    watcher = rdb.pubsub()
    watcher.psubscribe(f"__keyspace@0__:{prefix}kill:*")
    watcher.get_message(timeout=1)
    samples = []
    for i in range(-20, count):  # 20 warm-up requests
        task = f"bench-{uuid.uuid4().hex[:12]}"
        channel = f"__keyspace@0__:{prefix}kill:{task}".encode()
        sender = threading.Thread(
            target=lambda t=task: signer.slash_command(f"kill {t} bench", user_id=OPERATOR)
        )
        start = time.perf_counter()
        sender.start()
        while True:
            message = watcher.get_message(timeout=5)
            if message is None:
                raise RuntimeError(f"no SET of kill:{task} within 5 s")
            if message["type"] == "pmessage" and message["channel"] == channel:
                break
        elapsed = time.perf_counter() - start
        sender.join()
        if i >= 0:
            samples.append(elapsed)
    watcher.close()
    signer.close()
    return samples


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


def ack_times(
    port: int, rdb: redis.Redis, prefix: str, fake: FakeSlack, rounds: int
) -> list[float]:
    signer = SlackRequests(
        f"http://127.0.0.1:{port}/slack/events", SECRET, response_urls=fake.response_url
    )
    samples: list[float] = []
    for _ in range(rounds):
        data = escalation_data()
        rdb.xadd(f"{prefix}escalations", {"payload": json.dumps(data)})
        card = wait_card(fake, data["escalation_id"])
        time.sleep(0.2)  # let the bot record the card's ts
        samples += click_together(signer, card)
    signer.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        workdir = Path(tmp)
        private = PrivateRedis(workdir, "--notify-keyspace-events", "K$")
        private.start()
        redis_url = private.url
        rdb = redis.Redis.from_url(redis_url)
        (workdir / "policy.yaml").write_text(POLICY_YAML)
        env = {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "ESCBOT_POLICY": str(workdir / "policy.yaml"),
        }
        try:
            port = free_port()
            bare = [sys.executable, str(ROOT / "bench" / "bare_bolt.py"), "--port", str(port)]
            with running(bare, env, port, workdir):
                results["bare_bolt_set"] = summary(
                    kill_latency(port, rdb, prefix, args.count, fake)
                )
            for kind in ("sqlite", "postgresql"):
                with database(kind) as url:
                    port = free_port()
                    serve = [ESCBOT, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
                    with running(serve, env | {"DATABASE_URL": url}, port, workdir):
                        kills = kill_latency(port, rdb, prefix, args.count, fake)
                        acks = ack_times(port, rdb, prefix, fake, args.rounds)
                    results[kind] = {"kill": summary(kills), "ack_20_concurrent": summary(acks)}
        finally:
            rdb.close()
            private.stop()

    bare_row = results["bare_bolt_set"]
    print(
        f"{'signed /agent kill → key in Redis':<44}{'median ms':>10}{'p99 ms':>9}"
        f"{'x bare (median)':>17}{'x bare (p99)':>14}"
    )
    print(
        f"{'bare Bolt handler (SET only)':<44}{bare_row['median_ms']:>10.2f}"  # type: ignore[index]
        f"{bare_row['p99_ms']:>9.2f}{1:>17.1f}{1:>14.1f}"  # type: ignore[index]
    )
    for kind in ("sqlite", "postgresql"):
        row = results[kind]["kill"]  # type: ignore[index]
        median = row["median_ms"] / bare_row["median_ms"]  # type: ignore[index]
        p99 = row["p99_ms"] / bare_row["p99_ms"]  # type: ignore[index]
        results[kind]["x_bare"] = {"median": median, "p99": p99}  # type: ignore[index]
        print(
            f"{'escbot serve --http, ' + kind:<44}{row['median_ms']:>10.2f}"
            f"{row['p99_ms']:>9.2f}{median:>17.1f}{p99:>14.1f}"
        )
    print(
        f"\n{'ack time, 20 concurrent clicks on one card':<44}{'median ms':>10}{'p99 ms':>9}"
        f"{'max ms':>8}"
    )
    for kind in ("sqlite", "postgresql"):
        row = results[kind]["ack_20_concurrent"]  # type: ignore[index]
        print(
            f"{'escbot serve --http, ' + kind:<44}{row['median_ms']:>10.2f}"
            f"{row['p99_ms']:>9.2f}{row['max_ms']:>8.2f}"
        )
    print(f"saved {save('slack_kill', results)}")


if __name__ == "__main__":
    main()
