"""The asyncio Redis client the guard makes, and the one-line kill check for asyncio
agents."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from escbot_agent.connection import client_options

from .payloads import kill_keys


def connect(url: str, *, timeout: float = 2.0, name: str | None = None) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, **client_options(timeout, name, retry=Retry(NoBackoff(), 1))
    )


async def is_killed(
    client: aioredis.Redis, task_id: str, *, prefix: str = "", agent: str | None = None
) -> bool:
    """The original notes' check, in one round trip, for asyncio agents."""
    return bool(await client.exists(*kill_keys(task_id, prefix, agent)))


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
