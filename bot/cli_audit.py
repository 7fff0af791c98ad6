"""`escbot audit verify|export`: read in one snapshot, beside a running bot.

Neither holds a lock a writer waits for (a kill during a long verify goes through at
once), and both see the log as it was when they started.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from bot.db import audit
from bot.db.store import Store
from bot.settings import Settings


class TerminalProgress:
    """`verifying the audit chain: 40,000 of 100,000 rows` on a terminal, redrawn at most
    every `every` seconds and erased at the end; nothing when the stream is not a TTY."""

    def __init__(self, out: TextIO, every: float = 0.2) -> None:
        self.out = out
        self.every = every
        self.enabled = out.isatty()
        self._shown_at: float | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._shown_at is not None and now - self._shown_at < self.every:
            return
        self._shown_at = now
        self.out.write(f"\rverifying the audit chain: {done:,} of {total:,} rows")
        self.out.flush()

    def close(self) -> None:
        if self._shown_at is not None:
            self.out.write("\r\033[K")
            self.out.flush()


def run_audit(settings: Settings, args: argparse.Namespace) -> int:
    store = Store.from_url(settings.database_url)
    try:
        store.require_migrated()
        if args.audit_command == "verify":
            return _verify(store)
        return _export(store, args)
    finally:
        store.dispose()


def _verify(store: Store) -> int:
    progress = TerminalProgress(sys.stderr)
    try:
        with store.snapshot() as session:
            result = audit.verify(session, progress=progress)
    finally:
        progress.close()
    if not result.ok:
        print(
            f"audit chain BROKEN at row {result.first_bad_seq}: {result.problem} "
            f"({result.checked} rows before it are intact)",
            file=sys.stderr,
        )
        return 1
    print(f"audit chain intact: {result.checked} rows verified")
    return 0


def _export(store: Store, args: argparse.Namespace) -> int:
    with store.snapshot() as session:
        records = audit.iter_records(session, since=args.since)
        if args.output is None:
            audit.export(records, sys.stdout, args.format)
            return 0
        with args.output.open("w", encoding="utf-8", newline="") as out:
            count = audit.export(records, out, args.format)
    print(f"wrote {count} rows to {args.output}", file=sys.stderr)
    return 0
