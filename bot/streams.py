"""A consumer-group reader for a Redis stream: new entries, then stale pending ones again.

An entry is acknowledged only when its handler says it is done; one that fails stays
pending and is claimed again after `retry_idle_ms`, so a crash or an outage loses nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import redis
from escbot_agent.payloads import stream_entries

log = logging.getLogger(__name__)

GROUP = "escbot"


@dataclass(frozen=True)
class Entry:
    id: str
    fields: dict[str, str]
    deliveries: int


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamConsumer(ABC):
    name = "stream"

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        *,
        consumer: str | None = None,
        block_ms: int = 1000,
        batch: int = 50,
        retry_idle_ms: int = 15_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.consumer = consumer or default_consumer()
        self.block_ms = block_ms
        self.batch = batch
        self.retry_idle_ms = retry_idle_ms
        self._last_retry = 0.0

    @abstractmethod
    def handle(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        """Process one entry; True acknowledges it, False leaves it pending for a retry."""

    def ensure_group(self) -> None:
        try:
            # From the start of the stream: entries written before the bot first ran count.
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll_once(self, block_ms: int | None = None) -> int:
        """Handle one batch: stale pending entries first, then new ones. Returns the count."""
        handled = 0
        now = time.monotonic()
        if now - self._last_retry >= self.retry_idle_ms / 1000:
            self._last_retry = now
            handled += self._retry_stale()
        response: Any = self.client.xreadgroup(
            GROUP,
            self.consumer,
            {self.stream: ">"},
            count=self.batch,
            block=self.block_ms if block_ms is None else block_ms,
        )
        batch = [
            Entry(entry_id, fields, 1)
            for entry_id, fields in stream_entries(response)
            if fields is not None
        ]
        if batch:
            self.dispatch_batch(batch)
        return handled + len(batch)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.poll_once()
            except redis.RedisError as exc:
                log.warning("%s: Redis unavailable (%s); retrying", self.name, exc)
                stop.wait(1.0)
            except Exception:
                log.exception("%s: unexpected error; continuing", self.name)
                stop.wait(1.0)

    def _retry_stale(self) -> int:
        pending: list[dict[str, Any]] = self.client.xpending_range(
            self.stream, GROUP, min="-", max="+", count=self.batch, idle=self.retry_idle_ms
        )
        batch: list[Entry] = []
        for item in pending:
            claimed: Any = self.client.xclaim(
                self.stream, GROUP, self.consumer, self.retry_idle_ms, [item["message_id"]]
            )
            for entry_id, fields in claimed:
                if fields is None:  # deleted from the stream meanwhile
                    self.client.xack(self.stream, GROUP, entry_id)
                    continue
                batch.append(Entry(entry_id, fields, item["times_delivered"] + 1))
        if batch:
            self.dispatch_batch(batch)
        return len(batch)

    def dispatch_batch(self, batch: list[Entry]) -> None:
        """Handle a batch read together; one entry at a time unless a reader does better."""
        for entry in batch:
            self._dispatch(entry.id, entry.fields, entry.deliveries)

    def _dispatch(self, entry_id: str, fields: dict[str, str], deliveries: int) -> None:
        if self.handle(entry_id, fields, deliveries):
            self.client.xack(self.stream, GROUP, entry_id)
