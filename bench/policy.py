"""The policy's cost: evaluating one request, and an `auto` decision end to end.

    .venv/bin/python bench/policy.py [--count 20000] [--approvals 500]

(a) `bot.policy.evaluate` of one request against a policy with 200 routes and 200 action
    rules, each rule with a CEL condition: median and p99 µs, against a naive evaluator
    measured in the same run that re-parses the condition and the route patterns for
    every request.
(b) An approval the policy decides alone, end to end: the SDK's `request_approval` →
    `escalations` stream → the bot's intake → the service → `decision:{id}` → the
    agent's outcome, with the intake running in a thread as in `escbot serve`
    (SQLite and PostgreSQL): median and p99 ms.
"""

from __future__ import annotations

import argparse
import fnmatch
import random
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from escbot_agent import TaskGuard

from bench.common import REDIS_URL, database, percentile, save, summary, timed
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.intake import Intake
from bot.keys import KeyNames
from bot.policy import Policy, Request, evaluate, parse_policy
from bot.policy.conditions import Condition
from bot.policy.evaluate import DEFAULT_STAGE, OUTCOME_OF_DECIDE

ROUTES = 200
RULES = 200
TASK_TYPES = [f"type-{i}" for i in range(50)]


def big_policy() -> dict[str, Any]:
    ladders = {
        f"ladder-{i}": [
            {"name": f"l{i}-t{j}", "channel": f"C0L{i}T{j}", "ack_timeout": "5m"} for j in range(2)
        ]
        for i in range(20)
    }
    routes = []
    for i in range(ROUTES):
        match: dict[str, Any] = {"task_type": f"type-{i % 50}", "severity": ["high", "critical"]}
        if i % 3 == 0:
            match["agent"] = f"agent-{i % 7}-*"
        if i % 5 == 0:
            match["action"] = f"act?{i % 10}"
        routes.append({"name": f"route-{i}", "match": match, "ladder": f"ladder-{i % 20}"})
    actions = {
        f"act-{i}": {
            "decide": "approve",
            "when": f"args.amount > {100 + i} && severity in ['high', 'critical']",
            "otherwise": "auto",
            "min_confidence": 0.5,
            "review_sample": 0.01,
        }
        for i in range(RULES)
    }
    return {
        "roles": {"operator": ["U0OPERATOR"], "admin": ["U0ADMIN1"]},
        "tiers": [{"name": "triage", "channel": "C0TRIAGE", "ack_timeout": "5m"}],
        "ladders": ladders,
        "routes": routes,
        "actions": actions,
        "stages": {task_type: "narrow" for task_type in TASK_TYPES},
    }


def requests(count: int, seed: int = 7) -> list[Request]:
    rng = random.Random(seed)
    return [
        Request(
            kind="approval",
            severity=rng.choice(["low", "medium", "high", "critical"]),
            task_type=rng.choice([*TASK_TYPES, "unrouted"]),
            agent=f"agent-{rng.randrange(9)}-{rng.randrange(100)}",
            action=f"act-{rng.randrange(RULES + 20)}",
            args={"amount": rng.randrange(1000), "currency": "EUR"},
            confidence=rng.random(),
        )
        for _ in range(count)
    ]


def naive(policy_data: dict[str, Any], request: Request) -> str:
    """The same decision without anything prepared: patterns and conditions parsed anew."""
    values = request.match_values()
    ladder = "tiers"
    for route in policy_data["routes"]:
        ok = True
        for key, wanted in route["match"].items():
            patterns = wanted if isinstance(wanted, list) else [wanted]
            if not any(fnmatch.fnmatchcase(values[key], p) for p in patterns):
                ok = False
                break
        if ok:
            ladder = route["ladder"]
            break
    rule = policy_data["actions"].get(request.action or "")
    if rule is None:
        return ladder + ":" + ("human" if DEFAULT_STAGE == "narrow" else "auto")
    holds = Condition.compile(rule["when"]).holds(request.condition_values())
    return ladder + ":" + OUTCOME_OF_DECIDE[rule["decide"] if holds else rule["otherwise"]]


def bench_evaluation(count: int) -> dict[str, Any]:
    data = big_policy()
    policy: Policy = parse_policy(yaml.safe_dump(data).encode())
    batch = requests(count)
    compiled = timed(lambda i: evaluate(policy, batch[i % count]), count, warmup=500)
    reparsed = timed(lambda i: naive(data, batch[i % count]), count, warmup=500)
    result: dict[str, Any] = {}
    for label, samples in (("compiled", compiled), ("naive re-parse", reparsed)):
        result[label] = {
            "median_us": percentile(samples, 0.5) * 1e6,
            "p99_us": percentile(samples, 0.99) * 1e6,
        }
        print(
            f"  evaluate, {label:<15} median {result[label]['median_us']:7.1f} µs"
            f"   p99 {result[label]['p99_us']:7.1f} µs",
            flush=True,
        )
    result["ratio_median"] = result["naive re-parse"]["median_us"] / result["compiled"]["median_us"]
    print(f"  naive / compiled (median): {result['ratio_median']:.1f} times")
    return result


AUTO_POLICY = """
roles: {operator: [U0OPERATOR], admin: [U0ADMIN1]}
tiers: [{name: triage, channel: C0TRIAGE, ack_timeout: 5m}]
actions:
  issue_refund: {decide: approve, when: "args.amount > 500", otherwise: auto, min_confidence: 0.5}
"""


def bench_auto(kind: str, count: int) -> dict[str, float]:
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    client = connect(REDIS_URL)
    with database(kind) as url:
        store = Store.from_url(url)
        service = EscalationService(
            store, ControlPlane(client, KeyNames(prefix)), parse_policy(AUTO_POLICY.encode())
        )
        intake = Intake(connect(REDIS_URL, timeout=5), KeyNames(prefix), service, block_ms=100)
        stop = threading.Event()
        thread = threading.Thread(target=intake.run, args=(stop,), daemon=True)
        thread.start()
        guard = TaskGuard("bench-task", url=REDIS_URL, prefix=prefix, agent="bench").start()

        def ask(_i: int) -> None:
            outcome = guard.request_approval(
                "issue_refund", {"amount": 20}, reason="small refund", confidence=0.9, timeout=5
            )
            assert outcome.by == "policy", outcome

        samples = timed(ask, count, warmup=20)
        guard.close()
        stop.set()
        thread.join(5)
        store.dispose()
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()
    result = summary(samples)
    print(
        f"  auto decision end to end, {kind:<10} median {result['median_ms']:6.2f} ms"
        f"   p99 {result['p99_ms']:6.2f} ms",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--approvals", type=int, default=500)
    args = parser.parse_args()
    print(f"(a) policy evaluation, {ROUTES} routes and {RULES} action rules with conditions")
    results: dict[str, Any] = {"evaluation": bench_evaluation(args.count)}
    print(f"(b) an auto decision, SDK request_approval → outcome ({args.approvals} requests)")
    results["auto"] = {kind: bench_auto(kind, args.approvals) for kind in ("sqlite", "postgresql")}
    print(f"saved {save('policy', results)}")


if __name__ == "__main__":
    main()
