"""Writers that keep the database busy while a test reads it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store


def seed_audit(store: Store, n: int) -> None:
    """n audit rows at once (one head lock per 5,000), for chains that take a while."""
    now = datetime.now(UTC)
    entries = [
        audit.Entry(now, "U0OPERATOR", "kill", "sha256:test", task_id=f"seed-{i}", state={"i": i})
        for i in range(n)
    ]
    with store.transaction() as session:
        for start in range(0, n, 5000):
            audit.append_many(session, entries[start : start + 5000])


class KillWriter:
    """Kills task after task through the service, as the bot does, until stopped."""

    def __init__(self, service: EscalationService) -> None:
        self.service = service
        self.written = 0
        self.errors: list[BaseException] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> KillWriter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert self.errors == []

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.service.kill(f"writer-{self.written}", "cli:writer", "load")
                with self._changed:
                    self.written += 1
                    self._changed.notify_all()
        except BaseException as exc:  # pragma: no cover - reported by __exit__
            self.errors.append(exc)

    def await_one_more(self) -> None:
        """Block until another kill has committed."""
        with self._changed:
            target = self.written + 1
            assert self._changed.wait_for(lambda: self.written >= target, timeout=60)
