"""Redis killed under a running guard: the configured fail mode, then recovery. Each test
runs its own redis-server, which it stops and starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest
import redis
from escbot_agent import (
    AsyncTaskGuard,
    ControlPlaneUnreachable,
    PauseTimeout,
    TaskGuard,
    TaskKilled,
)

from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.errors import ControlPlaneUnavailable
from bot.keys import KeyNames
from tests.agent.conftest import REREAD, AgentLoop, eventually
from tests.conftest import OPERATOR
from tests.support.redis_server import PrivateRedis

Guards = Callable[..., TaskGuard]
PREFIX = "p:"


@pytest.fixture
def private_service(
    private_redis: PrivateRedis, make_service: Callable[..., EscalationService]
) -> Iterator[EscalationService]:
    client = connect(private_redis.url, timeout=0.5)
    yield make_service(ControlPlane(client, KeyNames(PREFIX)))
    client.close()


@pytest.fixture
def guard_on(private_redis: PrivateRedis, make_guard: Guards) -> Guards:
    def make(task_id: str, **options: object) -> TaskGuard:
        return make_guard(task_id, url=private_redis.url, prefix=PREFIX, **options)

    return make


def test_fail_closed_by_default_then_recover_and_obey_what_happened_meanwhile(
    guard_on: Guards,
    private_redis: PrivateRedis,
    private_service: EscalationService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="escbot_agent")
    guard = guard_on("refund-1")
    with AgentLoop(guard) as loop:
        private_redis.stop()
        eventually(lambda: guard.state == "unreachable", what="the outage to be noticed")
        assert not guard.control_reachable
        assert loop.holds()
        assert "failing closed: task refund-1 is held as paused" in caplog.text
        with pytest.raises(PauseTimeout) as caught:
            guard.checkpoint(max_pause=0.1)
        assert caught.value.unreachable

        private_redis.start()
        assert loop.advances()
        assert guard.state == "running" and guard.control_reachable
        assert "control plane reachable again" in caplog.text

        # An operator killed the task while Redis was down: recorded, then written back.
        private_redis.stop()
        eventually(lambda: guard.state == "unreachable")
        with pytest.raises(ControlPlaneUnavailable):
            private_service.kill("refund-1", OPERATOR, "while you were out")
        private_redis.start()
        private_service.reconcile()  # what the bot's sweep does
        error = loop.ended_with()
    assert isinstance(error, TaskKilled) and error.reason == "while you were out"


def test_raise_mode_raises_while_down_and_recovers(
    guard_on: Guards, private_redis: PrivateRedis
) -> None:
    guard = guard_on("refund-2", on_unreachable="raise")
    assert guard.checkpoint() == []
    private_redis.stop()

    def raises() -> bool:
        try:
            guard.checkpoint()
        except ControlPlaneUnreachable as exc:
            return "refund-2" in str(exc)
        return False

    eventually(raises, what="ControlPlaneUnreachable")
    private_redis.start()
    eventually(lambda: not raises(), what="the guard to recover")
    assert guard.state == "running"


def test_continue_mode_fails_open_and_says_so(
    guard_on: Guards, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="escbot_agent")
    guard = guard_on("refund-3", on_unreachable="continue")
    with AgentLoop(guard) as loop:
        private_redis.stop()
        eventually(lambda: guard.state == "unreachable")
        assert loop.advances()
        assert "WITHOUT kill or pause checks" in caplog.text
        private_redis.start()
        eventually(lambda: guard.state == "running")
    assert loop.error is None


def test_a_subscriber_disconnected_by_the_server_still_sees_the_kill(
    guard_on: Guards, private_redis: PrivateRedis, private_service: EscalationService
) -> None:
    guard = guard_on("refund-4")
    admin = redis.Redis.from_url(private_redis.url)
    with AgentLoop(guard) as loop:
        admin.client_kill_filter(_type="pubsub")  # the announcement below may be missed
        private_service.kill("refund-4", OPERATOR, "missed message")
        assert isinstance(loop.ended_with(), TaskKilled)
    admin.close()


def test_the_async_guard_fails_closed_and_recovers(private_redis: PrivateRedis) -> None:
    async def scenario() -> None:
        guard = AsyncTaskGuard(
            "refund-5", url=private_redis.url, prefix=PREFIX, reread_interval=REREAD
        )
        async with guard:
            assert await guard.checkpoint() == []
            private_redis.stop()
            async with asyncio.timeout(5):
                while guard.state != "unreachable":
                    await asyncio.sleep(0.01)
            held = asyncio.create_task(guard.checkpoint())
            await asyncio.sleep(0.3)
            assert not held.done()  # held as paused
            await asyncio.to_thread(private_redis.start)
            async with asyncio.timeout(5):
                assert await held == []
            assert guard.state == "running"

    asyncio.run(scenario())


@pytest.mark.parametrize("push", [True, False], ids=["push", "poll"])
def test_heartbeats_ride_out_an_outage(
    guard_on: Guards, private_redis: PrivateRedis, private_service: EscalationService, push: bool
) -> None:
    """Redis goes away under the heartbeat: the reader's outage handling, nothing more; the
    hash is back (Redis lost it) once Redis answers, and the agent obeys as before."""
    guard = guard_on("refund-6", push=push, on_unreachable="continue", heartbeat_interval=0.05)
    admin = redis.Redis.from_url(private_redis.url, decode_responses=True)
    key = KeyNames(PREFIX).task("refund-6")
    with AgentLoop(guard) as loop:
        assert admin.hget(key, "state") == "running"
        private_redis.stop()
        eventually(lambda: guard.state == "unreachable")
        assert loop.advances()  # failing open, as configured: the heartbeat changes nothing
        private_redis.start()
        eventually(lambda: admin.hget(key, "state") == "running", what="the hash to return")
        assert loop.advances() and guard.state == "running"
        private_service.kill("refund-6", OPERATOR, "after the outage")
        assert isinstance(loop.ended_with(), TaskKilled)
    eventually(lambda: admin.hget(key, "state") == "killed")
    admin.close()
