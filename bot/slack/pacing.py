"""Per-channel pacing at Slack's limit: about one message a second in a channel on
average, short bursts allowed (CONTRACTS §13). One token bucket per channel, shared by
every thread of the process that posts (cards, digests, review cards, announcements,
agent events), and held back for as long as Slack's `Retry-After` says after a 429.

Low and medium messages leave a few tokens in each bucket for high and critical cards,
so a flood of the calm ones never makes an urgent card wait for the refill.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

RATE = 1.0  # messages a second per channel, on average
BURST = 10  # what a quiet channel takes at once
RESERVE = 8  # tokens low and medium messages leave for high and critical ones
PACED_METHODS = frozenset({"chat.postMessage"})


@dataclass
class _Bucket:
    tokens: float
    at: float
    blocked_until: float = 0.0


class ChannelPacer:
    def __init__(
        self,
        *,
        rate: float = RATE,
        burst: int = BURST,
        reserve: int = RESERVE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.reserve = min(reserve, burst - 1)
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def try_take(self, channel: str, *, urgent: bool = True, count: int = 1) -> float:
        """Take `count` messages' tokens for `channel` now (0.0), or say how many seconds
        until they could be taken (nothing is taken then). More than a burst's worth is
        asked as a burst's worth."""
        with self._lock:
            now = self.clock()
            bucket = self._refilled(channel, now)
            if now < bucket.blocked_until:
                return bucket.blocked_until - now
            wanted = float(min(max(count, 1), self.burst if urgent else self.burst - self.reserve))
            needed = wanted if urgent else wanted + self.reserve
            if bucket.tokens >= needed:
                bucket.tokens -= wanted
                return 0.0
            return (needed - bucket.tokens) / self.rate

    def take(
        self, channel: str, *, urgent: bool = True, stop: threading.Event | None = None
    ) -> None:
        """Wait for a token (or for `stop`), then take it."""
        while (wait := self.try_take(channel, urgent=urgent)) > 0:
            if stop is not None:
                if stop.wait(wait):
                    return
            else:
                time.sleep(wait)

    def hold(self, channel: str, seconds: float) -> None:
        """Slack answered 429: nothing more to `channel` for `seconds`, then a slow start."""
        with self._lock:
            now = self.clock()
            bucket = self._refilled(channel, now)
            bucket.tokens = 0.0
            bucket.at = max(bucket.at, now + seconds)
            bucket.blocked_until = max(bucket.blocked_until, now + seconds)

    def _refilled(self, channel: str, now: float) -> _Bucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(float(self.burst), now)
        elif now > bucket.at:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket


class PacingWatch(RetryHandler):
    """A retry handler that never retries: a 429 on a paced method holds its channel in
    the pacer for Retry-After (slack_sdk's own handler then waits it out and retries)."""

    def __init__(self, pacer: ChannelPacer) -> None:
        super().__init__(max_retry_count=0)
        self.pacer = pacer

    def __deepcopy__(self, memo: dict[int, Any]) -> PacingWatch:
        return self  # one pacer per process, even for Bolt's copies of the client

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        if request.url.rsplit("/", 1)[-1] not in PACED_METHODS:
            return False
        channel = channel_of(request)
        if channel:
            self.pacer.hold(channel, retry_after(response))
        return False


def retry_after(response: HttpResponse) -> float:
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return 1.0


def channel_of(request: HttpRequest) -> str | None:
    if request.body_params and isinstance(request.body_params.get("channel"), str):
        return str(request.body_params["channel"])
    raw = request.data or b""
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("channel"), str):
            return str(body["channel"])
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        values = parse_qs(raw.decode("utf-8")).get("channel")
    except UnicodeDecodeError:
        return None
    return values[0] if values else None
