"""Agent-wide stops (CONTRACTS §10): `kill:agent:{agent}` and `pause:agent:{agent}` stop or
hold every task whose guard runs with that agent name, in push mode (the announcement;
the re-read is 30 s away) and in poll mode (the re-read)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from escbot_agent import AsyncTaskGuard, PauseTimeout, TaskGuard, TaskKilled, is_killed
from escbot_agent import aio as aio_module
from escbot_agent.core import GuardCore
from escbot_agent.payloads import parse_control

from bot.keys import KeyNames
from tests.agent.conftest import AgentLoop, Switches, eventually
from tests.agent.test_fleet import SLOW, task_hash

Guards = Callable[..., TaskGuard]
MODES = [
    pytest.param({"push": True, "reread_interval": 30.0}, id="push"),
    pytest.param({"push": False, "reread_interval": 0.1}, id="poll"),
]


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_wide_kill_stops_every_task_of_that_agent_and_no_other(
    make_guard: Guards, switches: Switches, prefix: str, task_id: str, mode: dict[str, Any]
) -> None:
    billing = [make_guard(f"{task_id}-{n}", agent="billing-agent", **mode) for n in range(3)]
    support = make_guard(f"{task_id}-s", agent="support-agent", **mode)
    key = KeyNames(prefix).kill_agent("billing-agent")
    with contextlib.ExitStack() as stack:
        loops = [stack.enter_context(AgentLoop(guard)) for guard in (*billing, support)]
        switches.set(key, "bad deploy of billing-agent")
        errors = [loop.ended_with() for loop in loops[:3]]
        assert loops[3].advances() and loops[3].error is None
    for guard, error in zip(billing, errors, strict=True):
        assert isinstance(error, TaskKilled)
        assert (error.scope, error.agent_wide, error.all_tasks, error.key) == (
            "agent",
            True,
            False,
            key,
        )
        assert error.agent == "billing-agent" and error.task_id == guard.task_id
        assert error.reason == "bad deploy of billing-agent"
        assert "every task of agent billing-agent was killed" in str(error)
        assert guard.killed is not None and guard.state == "killed"
    assert support.killed is None

    switches.lift(key)  # revived: every task goes on
    for guard in billing:
        eventually(lambda: all(g.killed is None for g in billing), what="the revive")
        assert guard.checkpoint() == []


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_wide_pause_holds_and_resumes(
    make_guard: Guards,
    switches: Switches,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
    mode: dict[str, Any],
) -> None:
    guard = make_guard(task_id, agent="billing-agent", **SLOW, **mode)
    other = make_guard(f"{task_id}-o", agent="support-agent", **mode)
    key = KeyNames(prefix).pause_agent("billing-agent")
    with AgentLoop(guard) as loop, AgentLoop(other) as unaffected:
        switches.set(key, "checking every refund")
        eventually(lambda: guard.paused is not None, what="the pause to be seen")
        assert guard.paused is not None and guard.paused.reason == "checking every refund"
        assert loop.holds(0.3)
        assert unaffected.advances() and other.paused is None
        assert guard.state == "paused"
        eventually(lambda: task_hash(rdb, prefix, task_id).get("state") == "paused")
        with pytest.raises(PauseTimeout) as caught:
            guard.checkpoint(max_pause=0.05)
        assert caught.value.control is not None
        assert caught.value.control.reason == "checking every refund"
        switches.lift(key)
        assert loop.advances()
    assert guard.paused is None and loop.error is None


def test_a_kill_wins_over_a_pause_and_the_most_specific_kill_is_named(
    make_guard: Guards, switches: Switches, prefix: str, task_id: str
) -> None:
    keys = KeyNames(prefix)
    guard = make_guard(task_id, agent="billing-agent")
    switches.set(keys.pause(task_id), "a look")
    switches.set(keys.kill_agent("billing-agent"), "agent down")
    eventually(lambda: guard.killed is not None)
    with pytest.raises(TaskKilled) as caught:
        guard.checkpoint(max_pause=5)
    assert caught.value.agent_wide
    switches.set(keys.kill(task_id), "this one")
    eventually(lambda: guard.killed is not None and guard.killed.reason == "this one")
    with pytest.raises(TaskKilled) as caught:
        guard.checkpoint()
    assert caught.value.scope == "task" and not caught.value.agent_wide
    assert guard.paused is not None  # still there, but the kill wins


def test_the_core_reads_every_key_in_one_mget() -> None:
    core = GuardCore(
        "refund-1",
        prefix="p:",
        agent="billing-agent",
        consumer=None,
        on_unreachable="pause",
        reread_interval=1.0,
    )
    assert core.control_keys == (
        "p:kill:refund-1",
        "p:kill:all",
        "p:pause:refund-1",
        "p:kill:agent:billing-agent",
        "p:pause:agent:billing-agent",
    )
    kill = json.dumps({"reason": "r", "by": "U1", "at": "2026-11-22T03:31:39Z"})
    core.apply_control("p:pause:agent:billing-agent", parse_control("", kill))  # announced
    assert core.pause_in_force is not None
    core.apply_controls([None, kill, None, kill, None], now=0.0)
    assert core.killed_error().scope == "agent"  # the agent's before all
    core.apply_controls([None, kill, None, None, kill], now=0.0)
    assert core.killed_error().all_tasks and core.pause_in_force is not None
    assert core.verdict(now=0.0) == "killed"


def test_is_killed_looks_at_the_agent_key_when_given(
    redis_url: str, rdb: redis.Redis, switches: Switches, prefix: str
) -> None:
    switches.set(KeyNames(prefix).kill_agent("billing-agent"), "down")
    assert not is_killed(rdb, "refund-1", prefix=prefix)
    assert is_killed(rdb, "refund-1", prefix=prefix, agent="billing-agent")
    assert not is_killed(rdb, "refund-1", prefix=prefix, agent="support-agent")

    async def check() -> bool:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await aio_module.is_killed(
                client, "refund-1", prefix=prefix, agent="billing-agent"
            )
        finally:
            await client.aclose()

    assert asyncio.run(check())


# ---------------------------------------------------------------------- asyncio


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_wide_kill_cancels_protected_work_of_every_async_task(
    redis_url: str, switches: Switches, prefix: str, task_id: str, mode: dict[str, Any]
) -> None:
    key = KeyNames(prefix).kill_agent("billing-agent")

    async def scenario() -> None:
        guards = [
            AsyncTaskGuard(f"{task_id}-{n}", url=redis_url, prefix=prefix, agent=agent, **mode)
            for n, agent in enumerate(("billing-agent", "billing-agent", "support-agent"))
        ]
        for guard in guards:
            await guard.start()
        try:
            runs = [asyncio.create_task(guard.run(asyncio.sleep(60))) for guard in guards]
            await asyncio.sleep(0.05)
            await asyncio.to_thread(switches.set, key, "bad deploy")
            async with asyncio.timeout(10):
                for run in runs[:2]:
                    with pytest.raises(TaskKilled) as caught:
                        await run
                    assert caught.value.agent_wide and caught.value.key == key
            assert not runs[2].done()
            runs[2].cancel()
            for guard in guards[:2]:
                with pytest.raises(TaskKilled):
                    await guard.checkpoint()
                assert guard.state == "killed"
            assert await guards[2].checkpoint() == []

            await asyncio.to_thread(switches.lift, key)
            async with asyncio.timeout(10):
                while guards[0].killed is not None:
                    await asyncio.sleep(0.01)
        finally:
            for guard in guards:
                await guard.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_wide_pause_holds_an_async_checkpoint(
    redis_url: str,
    switches: Switches,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
    mode: dict[str, Any],
) -> None:
    key = KeyNames(prefix).pause_agent("billing-agent")

    async def scenario() -> None:
        async with AsyncTaskGuard(
            task_id, url=redis_url, prefix=prefix, agent="billing-agent", **mode
        ) as guard:
            await asyncio.to_thread(switches.set, key, "hold on")
            async with asyncio.timeout(10):
                while guard.paused is None:
                    await asyncio.sleep(0.01)
            held = asyncio.create_task(guard.checkpoint())
            async with asyncio.timeout(10):
                while task_hash(rdb, prefix, task_id).get("state") != "paused":
                    await asyncio.sleep(0.01)
            assert not held.done()
            await asyncio.to_thread(switches.lift, key)
            async with asyncio.timeout(10):
                assert await held == []
            assert task_hash(rdb, prefix, task_id)["state"] == "running"

    asyncio.run(scenario())
