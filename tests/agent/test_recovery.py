"""Recovery as the agent sees it (CONTRACTS §11): a restart arrives at the checkpoint the
pause held, like a redirect and marked as a restart; an abandon stops the task; and the
agent's own end, `guard.finish`, in both guards."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from escbot_agent import AsyncTaskGuard, InboxMessage, TaskGuard, TaskKilled

from bot.core import EscalationService
from tests.agent.conftest import REREAD, eventually
from tests.conftest import OPERATOR

Guards = Callable[..., TaskGuard]


def test_a_restart_releases_the_paused_checkpoint_with_the_instruction(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    assert guard.checkpoint() == []
    service.pause(task_id, OPERATOR, "wrong amount")
    eventually(lambda: guard.paused is not None)
    got: list[InboxMessage] = []
    held = threading.Thread(target=lambda: got.extend(guard.checkpoint()), daemon=True)
    held.start()
    held.join(0.3)
    assert held.is_alive()  # the pause holds it
    service.restart(task_id, OPERATOR, "refund 500 EUR, not 740")
    held.join(5)
    assert not held.is_alive()
    if not got:  # the pause's removal may be seen before the entry's announcement
        got = eventually(guard.checkpoint, what="the restart entry")
    [message] = got
    assert message.is_restart and message.is_redirect
    assert (message.kind, message.text, message.author, message.source) == (
        "restart",
        "refund 500 EUR, not 740",
        OPERATOR,
        "operator",
    )
    assert guard.checkpoint() == []  # once


def test_an_abandoned_task_is_killed_with_the_reason(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    service.pause(task_id, OPERATOR)
    service.abandon(task_id, OPERATOR, "We could not reach your bank.")
    eventually(lambda: guard.killed is not None)
    with pytest.raises(TaskKilled) as caught:
        guard.checkpoint()
    assert caught.value.reason == "abandoned: We could not reach your bank."


def test_async_a_restart_releases_the_paused_checkpoint(
    redis_url: str, prefix: str, service: EscalationService, task_id: str
) -> None:
    async def scenario() -> list[InboxMessage]:
        async with AsyncTaskGuard(
            task_id, url=redis_url, prefix=prefix, reread_interval=REREAD
        ) as guard:
            await guard.checkpoint()
            await asyncio.to_thread(service.pause, task_id, OPERATOR, "hold")
            async with asyncio.timeout(5):
                while guard.paused is None:
                    await asyncio.sleep(0.01)
            held = asyncio.create_task(guard.checkpoint())
            await asyncio.sleep(0.3)
            assert not held.done()
            await asyncio.to_thread(service.restart, task_id, OPERATOR, "start over, in EUR")
            async with asyncio.timeout(5):
                got = await held
                while not got:
                    got = await guard.checkpoint()
                    await asyncio.sleep(0.01)
            assert await guard.checkpoint() == []
            return got

    [message] = asyncio.run(scenario())
    assert message.is_restart and message.is_redirect and message.text == "start over, in EUR"


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_finish_writes_the_agents_own_outcome(
    make_guard: Guards,
    redis_url: str,
    prefix: str,
    rdb: redis.Redis,
    task_id: str,
    status: Any,
) -> None:
    guard = make_guard(task_id, agent="billing-agent", task_type="refund")
    entry_id = guard.finish(status, notice="  Your refund is on its way.  ")

    async def finish_async() -> str:
        async with AsyncTaskGuard(
            task_id, url=redis_url, prefix=prefix, agent="billing-agent"
        ) as aguard:
            return await aguard.finish(status, notice="Sent again, from asyncio.")

    async_id = asyncio.run(finish_async())
    entries = rdb.xrange(f"{prefix}outcomes")
    assert [found for found, _fields in entries] == [entry_id, async_id]
    first, second = (fields for _id, fields in entries)
    assert first == {
        "task_id": task_id,
        "agent": "billing-agent",
        "status": status,
        "notice": "Your refund is on its way.",
        "by": "billing-agent",
        "escalation_id": "",
        "at": first["at"],
        "source": "agent",
        "task_type": "refund",
    }
    assert second["status"] == status and second["source"] == "agent"
    assert second["notice"] == "Sent again, from asyncio."
    with pytest.raises(ValueError, match="completed' or 'failed"):
        guard.finish("abandoned")  # type: ignore[arg-type]
    assert len(rdb.xrange(f"{prefix}outcomes")) == 2
