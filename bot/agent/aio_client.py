"""The asyncio Redis client the guard makes, and the one-line kill check for asyncio
agents."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.control import client_options
from bot.ids import check_task_id
from bot.keys import KeyNames


def connect(url: str, *, timeout: float = 2.0, name: str | None = None) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, **client_options(timeout, name, retry=Retry(NoBackoff(), 1))
    )


async def is_killed(client: aioredis.Redis, task_id: str, *, prefix: str = "") -> bool:
    """The original notes' check, in one round trip, for asyncio agents."""
    keys = KeyNames(prefix)
    return bool(await client.exists(keys.kill(check_task_id(task_id)), keys.kill_all))


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
