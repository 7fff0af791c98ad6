"""Many guards in one process share one subscriber: two connections, announcements only
for the tasks the process holds, each carrying its value; a lost connection re-reads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest
import redis
from escbot_agent import AsyncTaskGuard, TaskGuard, TaskKilled
from escbot_agent.shared import process_name

from bot.clock import iso, utcnow
from bot.control import ControlPlane, Effect, connect
from bot.keys import KeyNames
from tests.agent.conftest import eventually
from tests.support.redis_server import PrivateRedis

PREFIX = "shared:"
GUARDS = 40


def value(reason: str) -> dict[str, object]:
    return {"reason": reason, "by": "U0OPERATOR", "at": iso(utcnow()), "escalation_id": None}


@pytest.fixture
def admin(private_redis: PrivateRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def control(private_redis: PrivateRedis) -> Iterator[ControlPlane]:
    client = connect(private_redis.url, name="the-bot")
    yield ControlPlane(client, KeyNames(PREFIX))
    client.close()


def fleet_connections(admin: redis.Redis) -> int:
    return sum(1 for entry in admin.client_list() if entry.get("name") == process_name())


@contextlib.contextmanager
def fleet(url: str, count: int, **options: object) -> Iterator[list[TaskGuard]]:
    guards = [
        TaskGuard(f"task-{n}", url=url, prefix=PREFIX, agent="billing-agent", **options)  # type: ignore[arg-type]
        for n in range(count)
    ]
    try:
        for guard in guards:
            guard.start()
        yield guards
    finally:
        for guard in guards:
            guard.close()


def test_many_sync_guards_hold_two_connections_and_no_thread_each(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    threads = threading.active_count()
    with fleet(private_redis.url, GUARDS) as guards:
        assert all(guard.state == "running" for guard in guards)
        assert fleet_connections(admin) <= 2
        assert threading.active_count() - threads <= 1  # the process's one subscriber thread
    eventually(lambda: fleet_connections(admin) == 0, what="the last guard to close them")


def test_a_kill_reaches_only_its_guard_and_kill_all_reaches_all(
    private_redis: PrivateRedis, admin: redis.Redis, control: ControlPlane
) -> None:
    with fleet(private_redis.url, GUARDS, reread_interval=30.0) as guards:
        control.apply([Effect("kill", "task-7", "set", value("runaway"))])
        eventually(lambda: guards[7].state == "killed")
        with pytest.raises(TaskKilled):
            guards[7].checkpoint()
        assert [guard.state for guard in guards].count("killed") == 1
        assert guards[8].checkpoint() == []

        control.apply([Effect("kill", "all", "set", value("incident"))])
        eventually(lambda: all(guard.state == "killed" for guard in guards))
        for guard in guards[8:]:
            with pytest.raises(TaskKilled) as caught:
                guard.checkpoint()
            assert caught.value.all_tasks and caught.value.reason == "incident"


def test_an_announcement_carries_its_value_and_nobody_reads_on_it(
    private_redis: PrivateRedis, admin: redis.Redis, control: ControlPlane
) -> None:
    with fleet(private_redis.url, GUARDS, reread_interval=30.0, heartbeat=False) as guards:
        admin.config_resetstat()
        control.apply([Effect("kill", "all", "set", value("incident"))])
        eventually(lambda: all(guard.state == "killed" for guard in guards))
        stats = admin.info("commandstats")
    reads = {name: row["calls"] for name, row in stats.items() if name in ("cmdstat_mget",)}
    assert reads == {}  # the value came with the announcement: no MGET, however many guards


def test_other_tasks_announcements_are_not_delivered_to_this_process(
    private_redis: PrivateRedis, admin: redis.Redis, control: ControlPlane
) -> None:
    keys = KeyNames(PREFIX)
    with fleet(private_redis.url, 3) as guards:
        mine, other = keys.announcements("kill:task-1"), keys.announcements("kill:task-99")
        everyone = keys.announcements("kill:all")
        assert dict(admin.pubsub_numsub(mine, other, everyone)) == {
            mine: 1,
            other: 0,  # nobody here holds task-99
            everyone: 1,  # one subscription for the process, not one per guard
        }
        assert admin.publish(other, '{"op": "set", "value": {}}') == 0
        control.apply([Effect("kill", "task-99", "set", value("elsewhere"))])
        assert all(guard.checkpoint() == [] for guard in guards)
        guards[1].close()
        eventually(lambda: dict(admin.pubsub_numsub(mine))[mine] == 0, what="unsubscribed")
    # the contract's own channel still names every changed key, for agents in any language
    listener = admin.pubsub()
    listener.subscribe(keys.control)
    assert listener.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
    control.apply([Effect("pause", "task-5", "set", value("a look"))])
    message = listener.get_message(timeout=2)
    assert message is not None and message["data"] == keys.pause("task-5")
    listener.close()


def test_a_lost_connection_recovers_and_reads_again(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    keys = KeyNames(PREFIX)
    with fleet(private_redis.url, GUARDS, reread_interval=30.0) as guards:
        # Written with no announcement, as an operator at redis-cli might: only a read sees
        # it, and with a 30 s interval that is the read after the connection comes back.
        admin.set(keys.kill("task-3"), "1")
        for entry in admin.client_list():
            if entry.get("name") == process_name():
                admin.client_kill_filter(_id=entry["id"])
        eventually(lambda: guards[3].state == "killed", what="the read after reconnecting")
        assert [guard.state for guard in guards].count("killed") == 1
        assert fleet_connections(admin) <= 2


def test_many_async_guards_share_one_subscriber(
    private_redis: PrivateRedis, admin: redis.Redis, control: ControlPlane
) -> None:
    async def scenario() -> None:
        guards = [
            AsyncTaskGuard(f"task-{n}", url=private_redis.url, prefix=PREFIX, reread_interval=30.0)
            for n in range(GUARDS)
        ]
        async with contextlib.AsyncExitStack() as stack:
            for guard in guards:
                await stack.enter_async_context(guard)
            assert fleet_connections(admin) <= 2
            runs = [asyncio.create_task(guard.run(asyncio.sleep(60))) for guard in guards]
            await asyncio.sleep(0.1)
            await asyncio.to_thread(
                control.apply, [Effect("kill", "task-4", "set", value("runaway"))]
            )
            with pytest.raises(TaskKilled):
                async with asyncio.timeout(5):
                    await runs[4]
            assert not any(run.done() for n, run in enumerate(runs) if n != 4)
            await asyncio.to_thread(
                control.apply, [Effect("kill", "all", "set", value("incident"))]
            )
            async with asyncio.timeout(5):
                ended = await asyncio.gather(*runs, return_exceptions=True)
            assert all(isinstance(error, TaskKilled) for error in ended)
        assert fleet_connections(admin) == 0

    asyncio.run(scenario())
