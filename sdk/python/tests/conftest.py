"""The SDK's own tests need a Redis server and nothing of the bot: `REDIS_URL` (default the
local one), a key prefix per test, deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("ESCBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    name = f"escbot-sdk-test:{uuid.uuid4().hex[:10]}:"
    yield name
    keys = list(client.scan_iter(match=name + "*", count=500))
    if keys:
        client.delete(*keys)
