"""How the bot and the agent SDK connect to Redis."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def client_options(
    timeout: float = 2.0, name: str | None = None, *, retry: Any = None
) -> dict[str, Any]:
    """How the bot and the agent SDK talk to Redis: fail fast (one retry, for a connection
    that went stale) so that a break-glass command reports rather than hangs. `retry` is
    redis.asyncio's Retry for an asyncio client."""
    return {
        "decode_responses": True,
        "encoding_errors": "replace",
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "retry": retry if retry is not None else Retry(NoBackoff(), 1),
        "health_check_interval": 30,
        "client_name": name,
    }


def connect(url: str, *, timeout: float = 2.0, name: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url, **client_options(timeout, name))
