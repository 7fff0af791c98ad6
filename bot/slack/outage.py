"""One warning when Slack becomes unreachable, one when it is back (with how many attempts
failed meanwhile), instead of an error line, or a traceback, for every failed call.

Every Web API call of the bot, whoever makes it (the Slack worker, the agent-events relay,
Bolt's per-request clients, which copy the app client's retry handlers), passes through
the `OutageWatch` retry handler that `make_web_client` puts last in the client's list:
slack_sdk asks it only about an attempt that no handler before it retries, so it sees the
outcome of each call, not each attempt. It never asks for a retry itself. The work that
failed is kept and retried by its owner, as before; only the log changes.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger("bot.slack")

# slack_sdk logs each failed request at ERROR before raising it; the outage says it once.
SDK_LOGGERS = ("slack_sdk.web.base_client", "slack_sdk.webhook.client")
_SDK_FAILURE = "Failed to send a request to Slack API server"


def unreachable(exc: BaseException) -> bool:
    """Slack, or the way to it, is down (refused, reset, timed out, DNS, a 5xx), as
    opposed to Slack answering that this one request is wrong or rate-limited."""
    if isinstance(exc, SlackApiError):
        return exc.response is not None and exc.response.status_code >= 500
    return isinstance(exc, OSError | http.client.HTTPException)


def describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.get('error') or ''}".strip()
    reason = getattr(exc, "reason", None)  # urllib's URLError wraps the socket's error
    return f"{type(exc).__name__}: {reason if reason is not None else exc}"[:300]


class Outage:
    """Whether Slack is reachable, as the calls made to it found; thread-safe."""

    def __init__(
        self,
        name: str = "Slack",
        *,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.logger = logger
        self.clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    @property
    def failures(self) -> int:
        """Failed calls in the current outage (0 while reachable)."""
        return self._failures

    def failed(self, reason: str) -> None:
        with self._lock:
            first = self._since is None
            if first:
                self._since = self.clock()
            self._failures += 1
        if first:
            self.logger.warning(
                "%s is unreachable (%s); what is owed to it waits and is retried",
                self.name,
                reason,
            )
        else:
            self.logger.debug("%s still unreachable (%s)", self.name, reason)

    def reachable(self) -> None:
        with self._lock:
            if self._since is None:
                return
            since, failures = self._since, self._failures
            self._since, self._failures = None, 0
        self.logger.warning(
            "%s is reachable again after %.0fs (%d failed attempt(s) meanwhile)",
            self.name,
            self.clock() - since,
            failures,
        )

    def observe(self, exc: BaseException) -> bool:
        """Count `exc` when it is an outage; True if it was (the caller need not log it)."""
        if not unreachable(exc):
            return False
        self.failed(describe(exc))
        return True


class OutageWatch(RetryHandler):
    """A retry handler that never retries: it tells `outage` how each call ended."""

    def __init__(self, outage: Outage) -> None:
        super().__init__(max_retry_count=0)
        self.outage = outage

    def __deepcopy__(self, memo: dict[int, Any]) -> OutageWatch:
        # Bolt deep-copies each request (its client too) for lazy listeners: the copies
        # must keep reporting to the one outage of the process, not to a copy of it.
        return self

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code >= 500:
            self.outage.failed(f"HTTP {response.status_code}")
        elif response is None and error is not None:
            if unreachable(error):
                self.outage.failed(describe(error))
        else:
            self.outage.reachable()  # Slack answered, even if to refuse this request
        return False


def outage_of(client: Any) -> Outage | None:
    """The outage a client reports to (Bolt's per-request clients share the app's)."""
    for handler in getattr(client, "retry_handlers", None) or ():
        if isinstance(handler, OutageWatch):
            return handler.outage
    return None


def reported(client: Any, exc: BaseException) -> bool:
    """True when `exc` is an outage that `client`'s watch has counted already, so the
    caller should not log it again; False for anything worth a line of its own."""
    return unreachable(exc) and outage_of(client) is not None


class _QuietSdkFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_SDK_FAILURE)


def quiet_sdk_failures() -> None:
    """Drop slack_sdk's own line per failed request (idempotent)."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietSdkFailures) for f in logger.filters):
            logger.addFilter(_QuietSdkFailures())
