"""Gauges read from the database and Redis when Prometheus scrapes, so every replica
reports the same value: open escalations, cards waiting to be posted, live tasks, and the
unacknowledged escalations past their SLA (for the alert). Read at most once a second
whoever scrapes; each is an indexed count. A part that cannot be read leaves its gauges
out of that scrape (and says so once in the log) rather than failing the scrape."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.clock import Clock, utcnow
from bot.db import gauges
from bot.db.store import Store
from bot.fleet import LIVE
from bot.keys import KeyNames
from bot.policy import Policy

log = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_SECONDS = 1.0
SEVERITIES = ("low", "medium", "high", "critical")


class StateGauges(Collector):
    def __init__(
        self,
        store: Store,
        client: redis.Redis,
        keys: KeyNames,
        policy: Callable[[], Policy],
        *,
        clock: Clock = utcnow,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.store = store
        self.client = client
        self.keys = keys
        self.policy = policy
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._read_at = -float("inf")
        self._failing: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                self._cached = list(self._read())
                self._read_at = time.monotonic()
            families = self._cached
        yield from families

    def describe(self) -> Iterable[Metric]:
        return []  # read only at scrape time, never at registration

    def _read(self) -> Iterator[Metric]:
        now = self.clock()
        database = self._guarded("database", lambda: self._from_database(now))
        if database is not None:
            yield from database
        live = self._guarded("redis", lambda: self._live_tasks(now))
        if live is not None:
            yield live

    def _guarded(self, part: str, read: Callable[[], T]) -> T | None:
        try:
            value = read()
        except Exception as exc:
            if part not in self._failing:
                log.warning(
                    "metrics: the %s cannot be read, its gauges are left out: %s", part, exc
                )
                self._failing.add(part)
            return None
        if part in self._failing:
            log.info("metrics: the %s can be read again", part)
            self._failing.discard(part)
        return value

    def _from_database(self, now: datetime) -> list[Metric]:
        policy = self.policy()
        with self.store.reading() as session:
            open_count = gauges.open_escalations(session)
            waiting = gauges.cards_waiting(session)
            groups = gauges.unacknowledged_groups(session)
            late = gauges.unacknowledged_older_than(
                session, [(group, self._sla(policy, group)) for group in groups], now
            )
        past_sla = GaugeMetricFamily(
            "escbot_open_escalations_past_sla",
            "Unacknowledged escalations older than their SLA (the severity's ack_timeout, "
            "else their ladder's first tier's)",
            labels=["severity"],
        )
        for severity in sorted({*SEVERITIES, *late}):
            past_sla.add_metric([severity], late.get(severity, 0))
        return [
            GaugeMetricFamily(
                "escbot_open_escalations", "Escalations not decided yet", value=open_count
            ),
            GaugeMetricFamily(
                "escbot_cards_waiting", "Cards owed to Slack, not posted", value=waiting
            ),
            past_sla,
        ]

    @staticmethod
    def _sla(policy: Policy, group: gauges.OpenGroup) -> timedelta:
        if group.ack_timeout_seconds is not None:
            return timedelta(seconds=group.ack_timeout_seconds)
        return policy.ladder(group.ladder)[0].ack_timeout

    def _live_tasks(self, now: datetime) -> Metric:
        since = (now - LIVE).timestamp()
        count = int(self.client.zcount(self.keys.tasks, since, "+inf"))
        return GaugeMetricFamily("escbot_live_tasks", "Tasks seen in the last 30 s", value=count)
