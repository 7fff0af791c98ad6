"""Slack's per-channel posting limit, for the fake Slack: about one message a second in a
channel on average, short bursts allowed; past it, 429 with `Retry-After`.

A token bucket per channel (`burst` tokens, `rate` a second). Tests that need otherwise
pass `rate_limit=None` to FakeSlack, or a limit of their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

LIMITED_METHODS = frozenset({"chat.postMessage"})


class ChannelRateLimit:
    def __init__(
        self,
        *,
        rate: float = 1.0,
        burst: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.refused = 0  # 429s answered
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, float]] = {}  # channel: (tokens, at)

    def retry_after(self, method: str, channel: object) -> int | None:
        """None if the call may go through (its token taken); else the seconds to wait."""
        if method not in LIMITED_METHODS or not isinstance(channel, str) or not channel:
            return None
        with self._lock:
            now = self.clock()
            tokens, at = self._tokens.get(channel, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._tokens[channel] = (tokens - 1.0, now)
                return None
            self._tokens[channel] = (tokens, now)
            self.refused += 1
            return max(1, math.ceil((1.0 - tokens) / self.rate))
