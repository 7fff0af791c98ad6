"""Bounded label values: an agent cannot explode the number of series by inventing task
types. The first `limit` values a process sees keep their name; every later one is
counted as `other`."""

from __future__ import annotations

import threading

OTHER = "other"
NONE = "none"
DEFAULT_LIMIT = 50


class LabelFolder:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._kept: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        name = value or NONE
        if name in self._kept:
            return name
        with self._lock:
            if name in self._kept:
                return name
            if len(self._kept) >= self.limit:
                return OTHER
            self._kept.add(name)
            return name
