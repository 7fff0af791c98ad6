"""`escbot-agent mcp`: a real MCP client session over stdio with the server in its own
process, its approvals decided through the bot's service."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis
from mcp import ClientSession, StdioServerParameters, stdio_client

from bot.core import EscalationService
from bot.intake import Intake
from bot.keys import KeyNames
from tests.agent.adapter_support import Running, decide
from tests.agent.conftest import eventually, opened
from tests.conftest import OPERATOR

T = TypeVar("T")
TOOLS = {"request_approval", "check_control", "escalate", "say", "signal"}


def session(
    redis_url: str, prefix: str, task_id: str, script: Callable[[ClientSession], Awaitable[T]]
) -> Running[T]:
    """`script` in an MCP client session with `escbot-agent mcp` for `task_id`."""
    server = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "escbot_agent.cli",
            "mcp",
            "--task-id",
            task_id,
            "--agent",
            "mcp-agent",
            "--redis-url",
            redis_url,
            "--prefix",
            prefix,
        ],
    )

    async def run() -> T:
        async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            return await script(client)

    return Running.async_(run)


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    if isinstance(result.structured_content, dict):
        value = result.structured_content
        return value.get("result", value) if set(value) == {"result"} else value
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def new_id() -> str:
    return f"esc-{uuid.uuid4().hex[:12]}"


def test_a_client_lists_the_tools(
    redis_url: str, prefix: str, task_id: str, intake: Intake
) -> None:
    async def script(client: ClientSession) -> set[str]:
        return {tool.name for tool in (await client.list_tools()).tools}

    assert session(redis_url, prefix, task_id, script).result(intake) == TOOLS


@pytest.mark.parametrize(
    "verdict, options, expected",
    [
        (
            "approve",
            {"comment": "fine"},
            {"decision": "approved", "approved": True, "args": {"amount": 740}, "edited": False},
        ),
        (
            "approve",
            {"args": {"amount": 500}},
            {"decision": "approved", "approved": True, "args": {"amount": 500}, "edited": True},
        ),
        (
            "reject",
            {"comment": "never paid"},
            {"decision": "rejected", "approved": False, "comment": "never paid"},
        ),
    ],
    ids=["approved", "edited", "rejected"],
)
def test_request_approval_returns_the_decision_made_through_the_bot(
    redis_url: str,
    prefix: str,
    task_id: str,
    intake: Intake,
    service: EscalationService,
    verdict: str,
    options: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    eid = new_id()

    async def script(client: ClientSession) -> dict[str, Any]:
        return await call(
            client,
            "request_approval",
            action="issue_refund",
            reason="over the limit",
            args={"amount": 740},
            severity="high",
            escalation_id=eid,
        )

    run = session(redis_url, prefix, task_id, script)
    decide(intake, service, eid, verdict, **options)
    answer = run.result(intake)
    assert {key: answer[key] for key in expected} == expected
    assert answer["by"] == OPERATOR and answer["escalation_id"] == eid
    assert service.get_escalation(eid).agent == "mcp-agent"


def test_no_decision_in_time_is_expired(
    redis_url: str, prefix: str, task_id: str, intake: Intake
) -> None:
    async def script(client: ClientSession) -> dict[str, Any]:
        return await call(
            client, "request_approval", action="issue_refund", reason="r", timeout=0.5
        )

    answer = session(redis_url, prefix, task_id, script).result(intake)
    assert (answer["decision"], answer["approved"]) == ("expired", False)


def test_a_kill_while_waiting_is_an_answer_to_stop(
    redis_url: str, prefix: str, task_id: str, intake: Intake, service: EscalationService
) -> None:
    eid = new_id()

    async def script(client: ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
        answer = await call(
            client, "request_approval", action="drop_table", reason="r", escalation_id=eid
        )
        return answer, await call(client, "check_control")

    run = session(redis_url, prefix, task_id, script)
    opened(intake, service, eid)
    service.kill(task_id, OPERATOR, "runaway")
    answer, control = run.result(intake)
    assert (answer["state"], answer["reason"], answer["by"]) == ("killed", "runaway", OPERATOR)
    assert (control["state"], control["reason"]) == ("killed", "runaway")


def test_check_control_says_paused_then_running(
    redis_url: str,
    prefix: str,
    task_id: str,
    intake: Intake,
    service: EscalationService,
    rdb: redis.Redis,
) -> None:
    keys = KeyNames(prefix)
    states: list[str] = []

    async def script(client: ClientSession) -> list[str]:
        states.append((await call(client, "check_control"))["state"])
        while len(states) < 3:
            state = (await call(client, "check_control"))["state"]
            if state != states[-1]:
                states.append(state)
        return states

    run = session(redis_url, prefix, task_id, script)
    eventually(lambda: states, what="the first check", timeout=15)
    service.pause(task_id, OPERATOR, "look first")
    eventually(lambda: len(states) >= 2, what="the pause to be seen")
    service.resume(task_id, OPERATOR)
    assert run.result(intake) == ["running", "paused", "running"]
    assert rdb.exists(keys.task(task_id))  # the server keeps the task's heartbeat


def test_escalate_say_and_signal_write_the_streams(
    redis_url: str,
    prefix: str,
    task_id: str,
    intake: Intake,
    service: EscalationService,
    rdb: redis.Redis,
) -> None:
    keys = KeyNames(prefix)

    async def script(client: ClientSession) -> str:
        eid = (await call(client, "escalate", reason="the API keeps failing", severity="high"))[
            "escalation_id"
        ]
        await call(client, "say", text="retrying in a minute", escalation_id=eid)
        await call(client, "signal", name="cost", value=0.42, detail="one call")
        return str(eid)

    eid = session(redis_url, prefix, task_id, script).result(intake)
    record = opened(intake, service, eid)
    assert (record.kind, record.severity, record.reason) == (
        "exception",
        "high",
        "the API keeps failing",
    )
    said = [f for _id, f in rdb.xrange(keys.agent_events) if f.get("task_id") == task_id]
    assert [(f["text"], f["escalation_id"]) for f in said] == [("retrying in a minute", eid)]
    signals = [f for _id, f in rdb.xrange(keys.signals) if f["task_id"] == task_id]
    assert [(s["signal"], float(s["value"]), s["detail"]) for s in signals] == [
        ("cost", 0.42, "one call")
    ]
