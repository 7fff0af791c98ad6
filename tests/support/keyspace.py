"""Key prefixes of a test's own on the shared Redis, and removing only what they hold."""

from __future__ import annotations

import uuid

import redis


def new_prefix() -> str:
    return f"escbot-test:{uuid.uuid4().hex[:10]}:"


def delete_prefixed(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
