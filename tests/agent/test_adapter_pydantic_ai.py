"""escbot-agent[pydantic-ai]: a real Pydantic AI agent on its FunctionModel (no network, no
model), its approval-required tool decided through the bot's service."""

from __future__ import annotations

import time
from typing import Any

import pytest
from escbot_agent import AsyncTaskGuard, TaskKilled
from escbot_agent.adapters.common import call_escalation_id
from escbot_agent.adapters.pydantic_ai import EscbotCapability
from pydantic_ai import Agent, Tool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from bot.core import EscalationService
from bot.intake import Intake
from tests.agent.adapter_support import Running, decide
from tests.agent.conftest import REREAD, eventually, opened
from tests.conftest import OPERATOR

CALL_ID = "call-refund-1"


class Refunds:
    """The agent's one tool and a scripted model: call the tool, then report what it said."""

    def __init__(self) -> None:
        self.refunded: list[dict[str, Any]] = []
        self.model_calls = 0

    def issue_refund(self, amount: int, currency: str = "EUR") -> str:
        self.refunded.append({"amount": amount, "currency": currency})
        return f"refunded {amount} {currency}"

    def model(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.model_calls += 1
        returns = [
            part.content
            for message in messages
            for part in getattr(message, "parts", [])
            if isinstance(part, ToolReturnPart)
        ]
        if not returns:
            call = ToolCallPart("issue_refund", {"amount": 740}, tool_call_id=CALL_ID)
            return ModelResponse(parts=[call])
        return ModelResponse(parts=[TextPart(f"tool said: {returns[-1]}")])

    def agent(self) -> Agent[None, str]:
        tool = Tool(self.issue_refund, requires_approval=True)
        return Agent(FunctionModel(self.model), tools=[tool])


def start(
    refunds: Refunds, redis_url: str, prefix: str, task_id: str, **options: Any
) -> Running[str]:
    async def run() -> str:
        async with AsyncTaskGuard(
            task_id, url=redis_url, prefix=prefix, reread_interval=REREAD
        ) as guard:
            capability = EscbotCapability(guard, **options)
            result = await refunds.agent().run("refund order 4711", capabilities=[capability])
            return result.output

    return Running.async_(run)


@pytest.fixture
def refunds() -> Refunds:
    return Refunds()


@pytest.mark.parametrize(
    "verdict, options, said, refunded",
    [
        ("approve", {}, "tool said: refunded 740 EUR", [{"amount": 740, "currency": "EUR"}]),
        (
            "approve",
            {"args": {"amount": 500, "currency": "EUR"}},
            "tool said: refunded 500 EUR",
            [{"amount": 500, "currency": "EUR"}],
        ),
        (
            "reject",
            {"comment": "never paid"},
            f"tool said: Not run: rejected by {OPERATOR}: never paid",
            [],
        ),
    ],
    ids=["approved", "edited", "rejected"],
)
def test_a_decision_reaches_the_tool(
    refunds: Refunds,
    intake: Intake,
    service: EscalationService,
    redis_url: str,
    prefix: str,
    task_id: str,
    verdict: str,
    options: dict[str, Any],
    said: str,
    refunded: list[dict[str, Any]],
) -> None:
    run = start(refunds, redis_url, prefix, task_id)
    decide(intake, service, call_escalation_id(task_id, CALL_ID), verdict, **options)
    assert run.result(intake) == said
    assert refunds.refunded == refunded


def test_no_decision_in_time_is_expired_and_not_run(
    refunds: Refunds, intake: Intake, redis_url: str, prefix: str, task_id: str
) -> None:
    run = start(refunds, redis_url, prefix, task_id, timeout=0.5)
    assert run.result(intake) == "tool said: No decision came in time; not run."
    assert refunds.refunded == []


def test_a_kill_while_waiting_stops_the_run(
    refunds: Refunds,
    intake: Intake,
    service: EscalationService,
    redis_url: str,
    prefix: str,
    task_id: str,
) -> None:
    run = start(refunds, redis_url, prefix, task_id)
    opened(intake, service, call_escalation_id(task_id, CALL_ID))
    service.kill(task_id, OPERATOR, "runaway")
    with pytest.raises(TaskKilled, match="runaway"):
        run.result(intake)
    assert refunds.refunded == [] and refunds.model_calls == 1


def test_a_pause_holds_the_next_model_request_until_resumed(
    refunds: Refunds,
    intake: Intake,
    service: EscalationService,
    redis_url: str,
    prefix: str,
    task_id: str,
) -> None:
    run = start(refunds, redis_url, prefix, task_id)
    eid = call_escalation_id(task_id, CALL_ID)
    opened(intake, service, eid)
    service.pause(task_id, OPERATOR, "look first")
    service.decide(eid, OPERATOR, "approve")
    eventually(lambda: refunds.refunded, what="the approved tool to run")
    time.sleep(3 * REREAD)
    assert refunds.model_calls == 1 and not run.done  # held before the second model request
    service.resume(task_id, OPERATOR)
    assert run.result(intake) == "tool said: refunded 740 EUR"
    assert refunds.model_calls == 2
