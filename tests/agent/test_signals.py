"""`guard.signal()` and the failure reports (CONTRACTS §9): entries of `agent-signals`
that validate against the published schema; bad input writes nothing; an exception
leaving a guard is reported once, a kill is not."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import redis
from escbot_agent import AsyncTaskGuard, ControlPlaneUnreachable, TaskGuard, TaskKilled
from pydantic import ValidationError

from bot.contracts import json_schemas
from bot.core import EscalationService
from bot.keys import KeyNames
from tests.agent.conftest import eventually
from tests.conftest import OPERATOR
from tests.support.redis_server import PrivateRedis

Guards = Callable[..., TaskGuard]


def entries(rdb: redis.Redis, prefix: str) -> list[tuple[str, dict[str, str]]]:
    return rdb.xrange(KeyNames(prefix).signals)  # type: ignore[return-value]  # decoded client


def check_schema(fields: dict[str, str]) -> None:
    """The wire is strings; the schema describes the values (the number as a number)."""
    jsonschema.validate(fields | {"value": float(fields["value"])}, json_schemas()["signal"])


def test_signals_are_written_as_the_contract_says(
    make_guard: Guards, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    ids = [
        guard.signal("cost", 0.25, "model call: 1,200 tokens"),
        guard.signal("out_of_scope"),
        guard.signal("confidence", 3),
        guard.signal("cost", 1e20),
    ]
    written = entries(rdb, prefix)
    assert [entry_id for entry_id, _ in written] == ids
    for _, fields in written:
        assert set(fields) == {"task_id", "agent", "signal", "value", "detail", "at"}
        assert (fields["task_id"], fields["agent"]) == (task_id, "billing-agent")
        assert fields["at"].endswith("Z")
        check_schema(fields)
    assert [(f["signal"], f["value"], f["detail"]) for _, f in written] == [
        ("cost", "0.25", "model call: 1,200 tokens"),
        ("out_of_scope", "1", ""),
        ("confidence", "3", ""),
        ("cost", "1e+20", ""),
    ]


@pytest.mark.parametrize(
    ("name", "value", "detail", "error"),
    [
        ("cost", math.nan, None, ValidationError),
        ("cost", math.inf, None, ValidationError),
        ("cost", "3", None, TypeError),
        ("cost", None, None, TypeError),
        ("cost", True, None, TypeError),
        ("cost", 1, "x" * 2001, ValidationError),
        ("cost", 1, 42, ValidationError),
        ("1cost", 1, None, ValidationError),
        ("cost per call", 1, None, ValidationError),
        ("", 1, None, ValidationError),
        ("c" * 65, 1, None, ValidationError),
    ],
)
def test_bad_signals_raise_and_write_nothing(
    make_guard: Guards,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
    name: str,
    value: Any,
    detail: Any,
    error: type[Exception],
) -> None:
    guard = make_guard(task_id)
    with pytest.raises(error):
        guard.signal(name, value, detail)
    assert not rdb.exists(KeyNames(prefix).signals)


def test_a_signal_while_redis_is_down_raises_control_plane_unreachable(
    private_redis: PrivateRedis, make_guard: Guards
) -> None:
    guard = make_guard("refund-1", url=private_redis.url, prefix="p:", on_unreachable="continue")
    private_redis.stop()
    with pytest.raises(ControlPlaneUnreachable, match="agent-signals was not written"):
        guard.signal("cost", 2)


def test_a_failure_inside_the_with_block_is_reported_and_raised(
    redis_url: str, rdb: redis.Redis, prefix: str, task_id: str
) -> None:
    boom = ValueError("the ledger does not balance\nline two is not sent")
    with pytest.raises(ValueError) as caught, TaskGuard(task_id, url=redis_url, prefix=prefix):
        raise boom
    assert caught.value is boom  # the very exception, unchanged
    ((_, fields),) = entries(rdb, prefix)
    assert (fields["signal"], fields["value"], fields["detail"]) == (
        "failure",
        "1",
        "ValueError: the ledger does not balance",
    )
    check_schema(fields)

    class LedgerError(Exception):
        pass

    with pytest.raises(LedgerError), TaskGuard(f"{task_id}-2", url=redis_url, prefix=prefix):
        raise LedgerError("x" * 3000)
    detail = entries(rdb, prefix)[-1][1]["detail"]
    assert detail.startswith(f"{__name__}.") and "LedgerError: xxx" in detail
    assert len(detail) == 2000


def test_a_kill_an_interrupt_and_a_clean_exit_are_not_failures(
    redis_url: str,
    rdb: redis.Redis,
    prefix: str,
    task_id: str,
    service: EscalationService,
) -> None:
    service.kill(task_id, OPERATOR, "runaway")
    with pytest.raises(TaskKilled), TaskGuard(task_id, url=redis_url, prefix=prefix) as guard:
        guard.checkpoint()
    with (
        pytest.raises(KeyboardInterrupt),
        TaskGuard(f"{task_id}-2", url=redis_url, prefix=prefix),
    ):
        raise KeyboardInterrupt
    with TaskGuard(f"{task_id}-3", url=redis_url, prefix=prefix):
        pass
    assert entries(rdb, prefix) == []


def test_a_failure_while_redis_is_down_warns_once_and_raises_the_original(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    boom = RuntimeError("model timed out")
    with (
        pytest.raises(RuntimeError) as caught,
        TaskGuard("refund-1", url=private_redis.url, prefix="p:", on_unreachable="continue"),
    ):
        private_redis.stop()
        raise boom
    assert caught.value is boom
    warnings = [r for r in caplog.records if "failure signal was not written" in r.message]
    assert len(warnings) == 1 and "RuntimeError: model timed out" in warnings[0].message


# ---------------------------------------------------------------------- asyncio


def test_async_signals_and_failures(redis_url: str, rdb: redis.Redis, prefix: str) -> None:
    async def failing() -> None:
        raise ConnectionResetError("the shop's API hung up")

    async def scenario() -> None:
        guard = AsyncTaskGuard("refund-a", url=redis_url, prefix=prefix, agent="billing-agent")
        with pytest.raises(ConnectionResetError):
            async with guard:
                assert await guard.signal("cost", 1.5, "one call") != ""
                with pytest.raises(ValidationError):
                    await guard.signal("cost", math.nan)
                with pytest.raises(ConnectionResetError):
                    await guard.run(failing())  # reported, and the agent handles it
                await guard.run(failing())  # reported once, not again by the `async with`

    asyncio.run(scenario())
    written = [fields for _, fields in entries(rdb, prefix)]
    assert [(f["signal"], f["value"], f["detail"]) for f in written] == [
        ("cost", "1.5", "one call"),
        ("failure", "1", "ConnectionResetError: the shop's API hung up"),
        ("failure", "1", "ConnectionResetError: the shop's API hung up"),
    ]
    for fields in written:
        check_schema(fields)


def test_async_kills_and_cancellations_are_not_failures(
    redis_url: str, rdb: redis.Redis, prefix: str, service: EscalationService
) -> None:
    async def scenario() -> None:
        async with AsyncTaskGuard("refund-b", url=redis_url, prefix=prefix) as guard:
            started = asyncio.Event()

            async def step() -> None:
                started.set()
                await asyncio.sleep(60)

            task = asyncio.create_task(guard.run(step()))
            await started.wait()
            task.cancel()  # from elsewhere: passes through, not a failure
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.to_thread(service.kill, "refund-b", OPERATOR, "stop")
            with pytest.raises(TaskKilled):
                async with asyncio.timeout(10):
                    await guard.run(asyncio.sleep(60))
        with pytest.raises(TaskKilled):
            async with AsyncTaskGuard("refund-b", url=redis_url, prefix=prefix) as guard:
                await guard.checkpoint()

    asyncio.run(scenario())
    assert entries(rdb, prefix) == []


def test_an_async_failure_while_redis_is_down_warns_and_raises(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="escbot_agent")

    async def scenario() -> None:
        async with AsyncTaskGuard(
            "refund-1", url=private_redis.url, prefix="p:", on_unreachable="continue"
        ):
            await asyncio.to_thread(private_redis.stop)
            raise KeyError("order-17")

    with pytest.raises(KeyError):
        asyncio.run(scenario())
    eventually(lambda: "failure signal was not written" in caplog.text)
    assert "KeyError: 'order-17'" in caplog.text
