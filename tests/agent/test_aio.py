"""The asyncio guard: a kill cancels the running task, not only at its next checkpoint."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from escbot_agent import AsyncTaskGuard, TaskKilled
from escbot_agent.aio import is_killed

from bot.core import EscalationService
from bot.intake import Intake
from tests.agent.conftest import REREAD, opened
from tests.conftest import ADMIN, OPERATOR

Make = Callable[..., AsyncTaskGuard]


@pytest.fixture
def make(redis_url: str, prefix: str) -> Make:
    def build(task_id: str, **options: Any) -> AsyncTaskGuard:
        options.setdefault("url", redis_url)
        options.setdefault("prefix", prefix)
        options.setdefault("reread_interval", REREAD)
        return AsyncTaskGuard(task_id, **options)

    return build


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def sleeper(started: asyncio.Event) -> None:
    started.set()
    await asyncio.sleep(60)  # a slow model call: no checkpoint for a long time


def test_a_kill_cancels_the_protected_task_mid_await(
    make: Make, service: EscalationService, task_id: str
) -> None:
    async def scenario() -> None:
        async with make(task_id) as guard:
            assert guard.state == "running"
            started = asyncio.Event()
            task = asyncio.create_task(guard.run(sleeper(started)))
            await started.wait()
            await asyncio.to_thread(service.kill, task_id, OPERATOR, "runaway")
            async with asyncio.timeout(5):
                with pytest.raises(TaskKilled) as caught:
                    await task
            assert caught.value.reason == "runaway" and caught.value.by == OPERATOR
            assert not task.cancelled()  # it ended with TaskKilled, not a bare cancellation
            assert guard.state == "killed"
            with pytest.raises(TaskKilled):
                await guard.checkpoint()
            with pytest.raises(TaskKilled):
                async with guard.protect():
                    pass  # a killed task does not start new work

    asyncio.run(scenario())


def test_kill_all_cancels_every_task(make: Make, service: EscalationService, task_id: str) -> None:
    async def scenario() -> None:
        async with make(task_id) as one, make(f"{task_id}-b") as two:
            started = [asyncio.Event(), asyncio.Event()]
            tasks = [
                asyncio.create_task(guard.run(sleeper(event)))
                for guard, event in zip((one, two), started, strict=True)
            ]
            for event in started:
                await event.wait()
            await asyncio.to_thread(service.kill_all, ADMIN, "incident")
            async with asyncio.timeout(5):
                results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, TaskKilled) and r.all_tasks for r in results)

    asyncio.run(scenario())


def test_pause_holds_the_async_checkpoint_and_resume_releases_it(
    make: Make, service: EscalationService, task_id: str
) -> None:
    async def scenario() -> None:
        async with make(task_id) as guard:
            steps = 0

            async def loop() -> None:
                nonlocal steps
                while True:
                    await guard.checkpoint()
                    steps += 1
                    await asyncio.sleep(0.002)

            task = asyncio.create_task(loop())
            await until(lambda: steps > 0)
            await asyncio.to_thread(service.pause, task_id, OPERATOR, "hold")
            await until(lambda: guard.state == "paused")
            held = steps
            await asyncio.sleep(0.3)
            assert steps <= held + 1  # at most the step in flight
            await asyncio.to_thread(service.resume, task_id, OPERATOR)
            await until(lambda: steps > held + 2)
            task.cancel()

    asyncio.run(scenario())


def test_a_cancellation_from_elsewhere_passes_through_protect(make: Make, task_id: str) -> None:
    async def scenario() -> None:
        async with make(task_id) as guard:
            started = asyncio.Event()
            task = asyncio.create_task(guard.run(sleeper(started)))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert guard.state == "running"
            assert await guard.run(asyncio.sleep(0, result=7)) == 7

    asyncio.run(scenario())


def test_async_inbox_approval_and_thread(
    make: Make,
    service: EscalationService,
    intake: Intake,
    task_id: str,
    redis_url: str,
    prefix: str,
) -> None:
    async def scenario() -> None:
        async with make(task_id, agent="async-agent") as guard:
            await asyncio.to_thread(service.relay_message, task_id, OPERATOR, "hello")
            messages: list[Any] = []
            async with asyncio.timeout(5):
                while not messages:
                    messages = await guard.checkpoint()
                    await asyncio.sleep(0.01)
            assert [(m.kind, m.text, m.source) for m in messages] == [
                ("message", "hello", "operator")
            ]
            assert await guard.checkpoint() == []

            eid = f"esc-{uuid.uuid4().hex[:12]}"
            waiting = asyncio.create_task(
                guard.request_approval(
                    "deploy",
                    {"service": "api"},
                    reason="prod deploy",
                    timeout=10,
                    escalation_id=eid,
                )
            )

            await asyncio.to_thread(opened, intake, service, eid)
            await asyncio.to_thread(
                service.decide, eid, OPERATOR, "reject", comment="not on a Friday"
            )
            async with asyncio.timeout(5):
                outcome = await waiting
            assert (outcome.decision, outcome.comment) == ("rejected", "not on a Friday")
            assert outcome.args is None

            edited = f"esc-{uuid.uuid4().hex[:12]}"
            approving = asyncio.create_task(
                guard.request_approval(
                    "deploy",
                    {"service": "api", "canary": False},
                    reason="prod deploy",
                    timeout=10,
                    escalation_id=edited,
                    approvals=2,
                )
            )
            await asyncio.to_thread(opened, intake, service, edited)
            args = {"service": "api", "canary": True}
            await asyncio.to_thread(service.decide, edited, OPERATOR, "approve", args=args)
            await asyncio.to_thread(service.decide, edited, ADMIN, "approve")
            async with asyncio.timeout(5):
                approved = await approving
            assert approved.approved and approved.edited and approved.args == args
            assert approved.approvals == (OPERATOR, ADMIN)
            expired = await guard.request_approval("deploy", reason="again", timeout=0.2)
            assert expired.decision == "expired"
            await guard.say("rolled back", eid)

        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        events = await client.xrange(f"{prefix}agent-events")
        assert events[-1][1] == {"task_id": task_id, "escalation_id": eid, "text": "rolled back"}
        assert not await is_killed(client, task_id, prefix=prefix)
        await asyncio.to_thread(service.kill, task_id, OPERATOR, "done")
        assert await is_killed(client, task_id, prefix=prefix)
        await client.aclose()

    asyncio.run(scenario())
