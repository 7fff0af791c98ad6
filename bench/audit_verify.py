"""`escbot audit verify` over 100,000 audit rows, before and after, on both databases.

    .venv/bin/python bench/audit_verify.py [--rows 100000] [--repeat 5]

Before: the previous verify, copied here as the baseline (ORM objects, one streamed
query, the head read last, inside a writing transaction as the CLI ran it). After:
`bot.db.audit.verify` in `Store.snapshot()` (plain rows in keyset batches, the head read
first). Measured in the same run, per database:

- µs per row, median of `--repeat` verifies;
- how long a kill waits when sent half way through a verify running in another process
  (against a kill with nothing else running);
- with kills written continuously (same process, another connection), how many of
  `--repeat` verifies report a broken chain (every one of them wrongly: the chain is
  honest), and how the kills fared: how many failed, the longest one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bench.common import REDIS_URL, database, save
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db import audit
from bot.db.models import AuditHead, AuditRow
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import parse_policy
from tests.conftest import POLICY_YAML


def verify_before(session: Session, batch: int = 1000) -> audit.VerifyResult:
    """The verify this replaces, as it was (the baseline)."""
    expected_prev = audit.GENESIS_HASH
    expected_seq = 1
    checked = 0
    rows = session.execute(
        select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=batch)
    )
    for row in rows.scalars():
        if row.seq != expected_seq:
            return audit.VerifyResult(checked, expected_seq, f"row {expected_seq} is missing")
        if row.prev_hash != expected_prev:
            return audit.VerifyResult(checked, row.seq, f"row {row.seq} does not link")
        fields = {name: getattr(row, name) for name in audit.EXPORT_FIELDS if name != "hash"}
        if audit.row_hash(**fields) != row.hash:
            return audit.VerifyResult(checked, row.seq, f"row {row.seq} was changed")
        expected_prev = row.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, audit.HEAD_ID)
    if head is None:
        return audit.VerifyResult(checked, None, "the audit head row is missing")
    if head.seq != checked or head.hash != expected_prev:
        return audit.VerifyResult(checked, checked + 1, "rows were removed or added")
    return audit.VerifyResult(checked)


def run_before(store: Store) -> audit.VerifyResult:
    with store.transaction() as session:
        return verify_before(session)


def run_after(store: Store) -> audit.VerifyResult:
    with store.snapshot() as session:
        return audit.verify(session)


WAYS: dict[str, Callable[[Store], audit.VerifyResult]] = {"before": run_before, "after": run_after}


def fill(store: Store, rows: int) -> None:
    """Rows shaped like the bot's: a kill with its reason, the agent's state, a detail."""
    now = datetime.now(UTC)
    entries = [
        audit.Entry(
            now,
            "cli:alice",
            "kill",
            "sha256:0123456789abcdef",
            task_id=f"refund-{i}",
            escalation_id=f"01JD{i:022d}",
            reason="runaway loop: the agent refunded the same order twice",
            state={"step": i % 7, "order": f"A-{i}", "amount": 740},
            detail={"target": f"refund-{i}"},
        )
        for i in range(rows)
    ]
    with store.transaction() as session:
        for start in range(0, rows, 5000):
            audit.append_many(session, entries[start : start + 5000])


class Killer:
    """Kills from a connection of its own, as the running bot would."""

    def __init__(self, url: str, prefix: str) -> None:
        self.store = Store.from_url(url)
        self.client = connect(REDIS_URL)
        policy = parse_policy(POLICY_YAML.encode())
        control = ControlPlane(self.client, KeyNames(prefix))
        self.service = EscalationService(self.store, control, policy)

    def kill(self) -> float:
        start = time.perf_counter()
        self.service.kill(f"k-{uuid.uuid4().hex[:10]}", "cli:bench")
        return time.perf_counter() - start

    def close(self) -> None:
        self.store.dispose()
        self.client.close()


def _verify_in_child(url: str, way: str, ready: Any) -> None:
    store = Store.from_url(url)
    ready.set()
    outcome = WAYS[way](store)
    store.dispose()
    raise SystemExit(0 if outcome.ok else 1)


def kill_during(way: str, url: str, killer: Killer, duration: float) -> float:
    """A kill's wait when sent half way through a verify of `way` in another process
    (as `escbot audit verify` beside the bot)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_verify_in_child, args=(url, way, ready))
    child.start()
    ready.wait()
    time.sleep(duration / 2)
    waited = killer.kill()
    child.join()
    assert child.exitcode == 0 or way == "before"  # before: a false alarm on PostgreSQL
    return waited


def with_writer(
    way: Callable[[Store], audit.VerifyResult], store: Store, killer: Killer, repeat: int
) -> dict[str, float]:
    """`repeat` verifies back to back while kills are written continuously: how many say
    the (honest) chain is broken, how many kills failed, and the longest a kill took."""
    stop = threading.Event()
    waits: list[float] = []
    failed = 0

    def write() -> None:
        nonlocal failed
        while not stop.is_set():
            try:
                waits.append(killer.kill())
            except OperationalError:  # SQLite's busy timeout: "database is locked"
                failed += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        alarms = sum(not way(store).ok for _ in range(repeat))
    finally:
        stop.set()
        writer.join()
    return {
        "false_alarms": alarms,
        "kills": len(waits),
        "kills_failed": failed,
        "kill_max_ms": max(waits, default=0.0) * 1e3,
    }


def run_kind(kind: str, rows: int, repeat: int) -> dict[str, object]:
    prefix = f"bench-verify-{uuid.uuid4().hex[:8]}:"
    try:
        with database(kind) as url:
            store = Store.from_url(url)
            killer = Killer(url, prefix)
            try:
                fill(store, rows)
                return measure(kind, url, store, killer, repeat)
            finally:
                killer.close()
                store.dispose()
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def measure(kind: str, url: str, store: Store, killer: Killer, repeat: int) -> dict[str, object]:
    result: dict[str, object] = {}
    idle = statistics.median(killer.kill() for _ in range(20))
    result["kill_idle_ms"] = idle * 1e3
    for name, way in WAYS.items():
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            outcome = way(store)
            times.append(time.perf_counter() - start)
            assert outcome.ok, outcome.problem
        per_row = statistics.median(times) / outcome.checked * 1e6
        waits = [kill_during(name, url, killer, statistics.median(times)) for _ in range(3)]
        busy = with_writer(way, store, killer, repeat)
        result[name] = {
            "rows": outcome.checked,
            "median_s": statistics.median(times),
            "us_per_row": per_row,
            "kill_during_verify_ms": statistics.median(waits) * 1e3,
            "runs": repeat,
            **busy,
        }
        print(
            f"  {kind:<10} {name:<6} {per_row:6.2f} µs/row "
            f"({statistics.median(times):5.2f} s for {outcome.checked:,} rows); "
            f"a kill half way waits {statistics.median(waits) * 1e3:7.1f} ms "
            f"(idle {idle * 1e3:.1f} ms)\n"
            f"  {'':<17} with kills written throughout: false alarms "
            f"{busy['false_alarms']}/{repeat}, kills {busy['kills']:.0f} "
            f"({busy['kills_failed']:.0f} failed), longest {busy['kill_max_ms']:.0f} ms",
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"audit verify over {args.rows:,} rows (median of {args.repeat})")
    results = {kind: run_kind(kind, args.rows, args.repeat) for kind in ("sqlite", "postgresql")}
    print(f"\n{'database':<12}{'before µs/row':>15}{'after µs/row':>14}{'times faster':>14}")
    for kind, row in results.items():
        before, after = row["before"], row["after"]
        assert isinstance(before, dict) and isinstance(after, dict)
        ratio = before["us_per_row"] / after["us_per_row"]
        print(f"{kind:<12}{before['us_per_row']:>15.2f}{after['us_per_row']:>14.2f}{ratio:>14.1f}")
    print(f"saved {save('audit_verify', results)}")


if __name__ == "__main__":
    main()
