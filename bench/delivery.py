"""Delivery under load (CONTRACTS §13).

    .venv/bin/python bench/delivery.py [--sizes 1000 10000] [--baseline-max 10000]

(a) intake: N escalations XADDed at once, until all are stored, on SQLite and
    PostgreSQL: the batched intake (one transaction a batch) against the one
    transaction per escalation it replaced, measured in the same run;
(b) redaction per card: the intake's redaction and the last pass over the message,
    against rendering the same card without them (median, p99 µs);
(c) a storm: 1,000 escalations (10 critical) XADDed at once into one channel of the
    rate-limited fake Slack, `escbot serve --http` on PostgreSQL: time to the last
    critical card, to the last card or digest, the Slack calls made (against 1,000
    without digests); `/agent kill` answered during the storm against idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from bench.common import REDIS_URL, database, percentile, save
from bot.contracts import Escalation
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.intake import Intake
from bot.keys import KeyNames
from bot.policy import parse_policy
from bot.redaction.escalation import redact_escalation
from bot.redaction.outgoing import redact_message
from bot.slack.render import render_card
from bot.streams import Entry
from tests.conftest import OPERATOR, POLICY_YAML
from tests.slack.conftest import running_bot
from tests.support.keyspace import delete_prefixed
from tests.support.pii_corpus import sensitive
from tests.support.storm import posted, storm, xadd_all
from tests.test_blocks import BASE, NOW

POLICY = parse_policy(POLICY_YAML.encode())


class OneByOne(Intake):
    """The intake as it was: each entry opened in a transaction of its own."""

    def dispatch_batch(self, batch: list[Entry]) -> None:
        for entry in batch:
            try:
                self.service.open_escalation(self._parse(entry.fields.get("payload"), entry.fields))
            except Exception as exc:
                print("one-by-one refused an entry:", exc)
            self.client.xack(self.stream, "escbot", entry.id)


def intake_rate(kind: str, size: int, batched: bool) -> float:
    """Escalations stored a second, from all XADDed at once to all stored."""
    with database(kind) as url:
        store = Store.from_url(url)
        client = connect(REDIS_URL)
        prefix = f"bench-delivery-{uuid.uuid4().hex[:8]}:"
        keys = KeyNames(prefix)
        service = EscalationService(store, ControlPlane(client, keys), POLICY)
        streams = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        reader = (Intake if batched else OneByOne)(streams, keys, service, block_ms=50)
        reader.ensure_group()
        xadd_all(
            streams, keys.escalations, storm(size, critical=size // 100, tag=uuid.uuid4().hex[:6])
        )
        start = time.perf_counter()
        while reader.poll_once(block_ms=50):
            pass
        elapsed = time.perf_counter() - start
        delete_prefixed(streams, prefix)
        streams.close()
        client.close()
        store.dispose()
    return size / elapsed


def redaction_cost(count: int) -> dict[str, float]:
    texts = [sample.text for sample in sensitive(count)]
    rules = POLICY.redaction.rules
    plain: list[float] = []
    redacted: list[float] = []
    for i, text in enumerate(texts):
        escalation = Escalation.model_validate(
            {
                "task_id": f"task-{i}",
                "agent": "billing-agent",
                "kind": "approval",
                "reason": text,
                "action": {"name": "issue_refund", "args": {"note": text}},
                "context": {"source": text},
            }
        )
        view = replace(BASE, reason=escalation.reason, context={"source": text})
        start = time.perf_counter()
        card = render_card(POLICY, view, view.cards[0], NOW)
        payload = {"channel": "C0TRIAGE", "blocks": [b.to_dict() for b in card.blocks]}
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        shown, _ = redact_escalation(escalation, rules)
        view = replace(BASE, reason=shown.reason, context=dict(shown.context or {}))
        card = render_card(POLICY, view, view.cards[0], NOW)
        payload = {"channel": "C0TRIAGE", "blocks": [b.to_dict() for b in card.blocks]}
        redact_message(payload, rules)
        redacted.append(time.perf_counter() - start)
    us = 1e6
    return {
        "n": len(texts),
        "plain_median_us": statistics.median(plain) * us,
        "plain_p99_us": percentile(plain, 0.99) * us,
        "redacted_median_us": statistics.median(redacted) * us,
        "redacted_p99_us": percentile(redacted, 0.99) * us,
        "cost_median_us": (statistics.median(redacted) - statistics.median(plain)) * us,
        "ratio_median": statistics.median(redacted) / statistics.median(plain),
    }


def kill_once(bot: Any, task: str) -> float:
    start = time.perf_counter()
    bot.reply_to(bot.command(f"kill {task}", OPERATOR), timeout=60)
    return time.perf_counter() - start


def the_storm() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        database("postgresql") as url,
        running_bot(Path(tmp), url, REDIS_URL) as bot,
    ):
        idle = [kill_once(bot, f"idle-{i}") for i in range(20)]
        entries = storm(1000, critical=10, tag="bench")
        ids = [entry["escalation_id"] for entry in entries]
        critical = {e["escalation_id"] for e in entries if e["severity"] == "critical"}
        bot.fake.clear()
        during: list[float] = []
        done = threading.Event()

        def keep_killing() -> None:
            i = 0
            while not done.wait(0.5):  # an operator's pace, not a flood of kills
                during.append(kill_once(bot, f"storm-kill-{i}"))
                i += 1

        started = datetime.now(UTC)
        xadd_all(bot.rdb, bot.key("escalations"), entries)
        killer = threading.Thread(target=keep_killing)
        killer.start()
        cards = None
        while cards is None:
            time.sleep(0.2)
            cards = posted(bot.store, ids)
        done.set()
        killer.join()
        calls = bot.fake.calls("chat.postMessage")
        last_critical = max(c.posted_at for c in cards if c.escalation_id in critical)
        last = max(c.posted_at for c in cards)
        latency = [
            (c.posted_at - c.created_at).total_seconds()
            for c in cards
            if c.escalation_id in critical
        ]
        return {
            "to_last_critical_s": (last_critical - started).total_seconds(),
            "critical_after_intake_max_s": max(latency),
            "to_last_card_or_digest_s": (last - started).total_seconds(),
            "slack_post_calls": len(calls),
            "slack_post_refused": sum(c.failed for c in calls),
            "messages_without_digests": len(entries),
            "digests": len({c.digest_id for c in cards if c.digest_id}),
            "kill_idle_median_ms": statistics.median(idle) * 1e3,
            "kill_idle_p99_ms": percentile(idle, 0.99) * 1e3,
            "kill_storm_median_ms": statistics.median(during) * 1e3,
            "kill_storm_p99_ms": percentile(during, 0.99) * 1e3,
            "kill_storm_n": len(during),
            "kill_ratio_median": statistics.median(during) / statistics.median(idle),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--baseline-max", type=int, default=10000, help="largest size the old path runs"
    )
    parser.add_argument("--kinds", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--redaction", type=int, default=2000)
    parser.add_argument(
        "--parts", nargs="+", default=["intake", "redaction", "storm"], help="what to run"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"intake": {}}
    for kind in args.kinds if "intake" in args.parts else ():
        for size in args.sizes:
            batched = intake_rate(kind, size, batched=True)
            row: dict[str, float] = {"batched_per_s": batched}
            if size <= args.baseline_max:
                baseline = intake_rate(kind, size, batched=False)
                row |= {"one_by_one_per_s": baseline, "ratio": batched / baseline}
            results["intake"][f"{kind}_{size}"] = row
            print(f"intake {kind:10} {size:6}: {row}", flush=True)
    if "redaction" in args.parts:
        results["redaction"] = redaction_cost(args.redaction)
        print("redaction per card:", results["redaction"], flush=True)
    if "storm" in args.parts:
        results["storm"] = the_storm()
        print("storm:", results["storm"], flush=True)
    print("saved", save("delivery", results))


if __name__ == "__main__":
    main()
