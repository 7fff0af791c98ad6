"""The fleet heartbeat of the asyncio guard (CONTRACTS §10), against the real Redis."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from escbot_agent import AsyncTaskGuard, TaskKilled

from bot.core import EscalationService
from bot.intake import Intake
from bot.keys import KeyNames
from tests.agent.conftest import opened
from tests.agent.test_fleet import DAY, FIELDS, SLOW, task_hash
from tests.conftest import OPERATOR

Make = Callable[..., AsyncTaskGuard]


@pytest.fixture
def make(redis_url: str, prefix: str) -> Make:
    def build(task_id: str, **options: Any) -> AsyncTaskGuard:
        options.setdefault("url", redis_url)
        options.setdefault("prefix", prefix)
        options.setdefault("reread_interval", 0.2)
        return AsyncTaskGuard(task_id, **options)

    return build


async def until(check: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("push", [True, False], ids=["push", "poll"])
def test_the_hash_and_the_sorted_set_with_steps_and_refreshes(
    make: Make, rdb: redis.Redis, prefix: str, task_id: str, push: bool
) -> None:
    keys = KeyNames(prefix)
    rdb.zadd(keys.tasks, {"old-task": time.time() - DAY - 60})

    async def scenario() -> None:
        async with make(
            task_id, agent="billing-agent", task_type="refund", push=push, heartbeat_interval=0.1
        ) as guard:
            row = task_hash(rdb, prefix, task_id)
            assert set(row) == FIELDS
            assert (row["agent"], row["task_type"], row["state"], row["pid"]) == (
                "billing-agent",
                "refund",
                "running",
                str(os.getpid()),
            )
            assert set(rdb.zrange(keys.tasks, 0, -1)) == {task_id}  # a day old: trimmed
            await guard.checkpoint(step="draft the refund")
            await until(lambda: task_hash(rdb, prefix, task_id)["step"] == "draft the refund")
            await guard.checkpoint()  # unlabelled: the label stays
            await guard.checkpoint(None, "send it")
            await until(lambda: task_hash(rdb, prefix, task_id)["step"] == "send it")
            seen = task_hash(rdb, prefix, task_id)["seen_at"]
            await until(lambda: task_hash(rdb, prefix, task_id)["seen_at"] != seen)
        assert task_hash(rdb, prefix, task_id)["state"] == "finished"
        assert rdb.zscore(keys.tasks_ended, task_id) is not None

    asyncio.run(scenario())


def test_states_paused_killed_and_a_killed_task_stays_killed(
    make: Make, service: EscalationService, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    async def scenario() -> None:
        async with make(task_id, **SLOW) as guard:  # only the state changes write
            await asyncio.to_thread(service.pause, task_id, OPERATOR, "a look")
            await until(lambda: guard.paused is not None)
            held = asyncio.create_task(guard.checkpoint())
            await until(lambda: task_hash(rdb, prefix, task_id)["state"] == "paused")
            await asyncio.to_thread(service.resume, task_id, OPERATOR)
            assert await held == []
            assert task_hash(rdb, prefix, task_id)["state"] == "running"

            started = asyncio.Event()

            async def step() -> None:
                started.set()
                await asyncio.sleep(60)

            run = asyncio.create_task(guard.run(step()))
            await started.wait()
            await asyncio.to_thread(service.kill, task_id, OPERATOR, "runaway")
            with pytest.raises(TaskKilled):
                async with asyncio.timeout(10):
                    await run
            await until(lambda: task_hash(rdb, prefix, task_id)["state"] == "killed")
        assert task_hash(rdb, prefix, task_id)["state"] == "killed"
        assert rdb.zscore(KeyNames(prefix).tasks_ended, task_id) is not None

    asyncio.run(scenario())


def test_waiting_for_an_approval_shows(
    make: Make,
    intake: Intake,
    service: EscalationService,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
) -> None:
    eid = f"esc-{uuid.uuid4().hex[:12]}"

    async def scenario() -> None:
        async with make(task_id, task_type="refund", **SLOW) as guard:
            asking = asyncio.create_task(
                guard.request_approval(
                    "issue_refund", reason="above the limit", timeout=10, escalation_id=eid
                )
            )
            record = await asyncio.to_thread(opened, intake, service, eid)
            assert record.task_type == "refund"
            await until(lambda: task_hash(rdb, prefix, task_id)["state"] == "waiting")
            await asyncio.to_thread(service.decide, eid, OPERATOR, "approve")
            assert (await asking).approved
            assert task_hash(rdb, prefix, task_id)["state"] == "running"
            assert guard.task_type == "refund"

    asyncio.run(scenario())


def test_the_hash_expires_after_its_ttl_and_none_without_heartbeats(
    make: Make, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    keys = KeyNames(prefix)

    async def scenario() -> None:
        async with make(task_id, heartbeat_interval=0.1, heartbeat_ttl=0.5):
            assert 0 < rdb.pttl(keys.task(task_id)) <= 500
        await until(lambda: not rdb.exists(keys.task(task_id)))
        async with make(f"{task_id}-off", heartbeat=False) as quiet:
            await quiet.checkpoint()
        assert not rdb.exists(keys.task(f"{task_id}-off"))
        assert rdb.zscore(keys.tasks, f"{task_id}-off") is None

    asyncio.run(scenario())
