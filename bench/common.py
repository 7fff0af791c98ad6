"""Shared helpers for the benchmarks: throwaway databases and percentile summaries."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.db import migrate
from bot.db.engine import make_engine

PG_ADMIN_URL = os.environ.get("ESCBOT_BENCH_PG_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ESCBOT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh migrated database of `kind` ('sqlite' or 'postgresql'), dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
            yield url
        return
    admin = sa.create_engine(
        make_engine(PG_ADMIN_URL).url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    name = f"escbot_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_engine(PG_ADMIN_URL).url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def timed(operation: Callable[[int], Any], count: int, warmup: int = 50) -> list[float]:
    """Seconds per call of operation(i), after `warmup` untimed calls."""
    for i in range(warmup):
        operation(-1 - i)
    samples = []
    for i in range(count):
        start = time.perf_counter()
        operation(i)
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median_ms": statistics.median(samples) * 1e3,
        "p99_ms": percentile(samples, 0.99) * 1e3,
        "max_ms": max(samples) * 1e3,
    }


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def await_keyspace(watcher: Any, channel: bytes, what: str, timeout: float = 5) -> None:
    """Wait for Redis's keyspace notice on `channel` (a pattern-subscribed PubSub)."""
    while True:
        message = watcher.get_message(timeout=timeout)
        if message is None:
            raise RuntimeError(f"no {what} within {timeout:g} s")
        if message["type"] == "pmessage" and message["channel"] == channel:
            return
