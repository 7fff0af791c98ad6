"""escbot-agent[openai-agents]: a real OpenAI Agents SDK run on a fake `Model` (no network, no
model), its gated tool decided through the bot's service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from agents import Agent, ModelSettings, Tool, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model, ModelTracing
from agents.testing.model import assistant_message, function_call
from agents.usage import Usage
from escbot_agent import AsyncTaskGuard, TaskKilled
from escbot_agent.adapters.common import call_escalation_id
from escbot_agent.adapters.openai_agents import EscbotApprovals

from bot.core import EscalationService
from bot.intake import Intake
from bot.keys import KeyNames
from tests.agent.adapter_support import Running, decide
from tests.agent.conftest import REREAD, eventually, opened
from tests.conftest import OPERATOR

CALL_ID = "call_refund_1"
set_tracing_disabled(True)  # nothing leaves the machine


class ScriptedRefundModel(Model):
    """The SDK's `Model` interface without a model: call the tool, then say what it returned."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        **kwargs: Any,
    ) -> ModelResponse:
        self.calls += 1
        outputs = [
            item.get("output")
            for item in (input if isinstance(input, list) else [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        usage = Usage(requests=1, input_tokens=12, output_tokens=5, total_tokens=17)
        if outputs:
            reply = assistant_message(f"tool said: {outputs[-1]}")
            return ModelResponse(output=[reply], usage=usage, response_id=None)
        call = function_call("issue_refund", {"amount": 740}, call_id=CALL_ID)
        return ModelResponse(output=[call], usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("these tests do not stream")


class Refunds:
    def __init__(self) -> None:
        self.refunded: list[dict[str, Any]] = []
        self.model = ScriptedRefundModel()

    def run(self, redis_url: str, prefix: str, task_id: str, **options: Any) -> Running[str]:
        refunded = self.refunded

        @function_tool
        def issue_refund(amount: int, currency: str = "EUR") -> str:
            """Refund an order."""
            refunded.append({"amount": amount, "currency": currency})
            return f"refunded {amount} {currency}"

        async def run() -> str:
            async with AsyncTaskGuard(
                task_id, url=redis_url, prefix=prefix, reread_interval=REREAD
            ) as guard:
                approvals = EscbotApprovals(guard, **options)
                agent = Agent(
                    name="billing", model=self.model, tools=[approvals.gate(issue_refund)]
                )
                result = await approvals.run(agent, "refund order 4711")
                return str(result.final_output)

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
    run = refunds.run(redis_url, prefix, task_id)
    decide(intake, service, call_escalation_id(task_id, CALL_ID), verdict, **options)
    assert run.result(intake) == said
    assert refunds.refunded == refunded


def test_no_decision_in_time_is_expired_and_not_run(
    refunds: Refunds, intake: Intake, redis_url: str, prefix: str, task_id: str
) -> None:
    run = refunds.run(redis_url, prefix, task_id, timeout=0.5)
    assert run.result(intake) == "tool said: No decision came in time; not run."
    assert refunds.refunded == []


def test_each_model_call_reports_its_tokens_as_cost(
    refunds: Refunds,
    intake: Intake,
    service: EscalationService,
    rdb: redis.Redis,
    redis_url: str,
    prefix: str,
    task_id: str,
) -> None:
    run = refunds.run(redis_url, prefix, task_id, cost_per_token=0.001)
    decide(intake, service, call_escalation_id(task_id, CALL_ID), "approve")
    run.result(intake)
    signals = [f for _id, f in rdb.xrange(KeyNames(prefix).signals) if f["task_id"] == task_id]
    costs = [s for s in signals if s["signal"] == "cost"]
    assert [float(s["value"]) for s in costs] == [pytest.approx(0.017)] * 2
    assert costs[0]["detail"] == "12 input, 5 output tokens"


def test_a_kill_while_waiting_stops_the_run(
    refunds: Refunds,
    intake: Intake,
    service: EscalationService,
    redis_url: str,
    prefix: str,
    task_id: str,
) -> None:
    run = refunds.run(redis_url, prefix, task_id)
    opened(intake, service, call_escalation_id(task_id, CALL_ID))
    service.kill(task_id, OPERATOR, "runaway")
    with pytest.raises(TaskKilled, match="runaway"):
        run.result(intake)
    assert refunds.refunded == [] and refunds.model.calls == 1


def test_a_pause_holds_the_next_model_call_until_resumed(
    refunds: Refunds,
    intake: Intake,
    service: EscalationService,
    redis_url: str,
    prefix: str,
    task_id: str,
) -> None:
    run = refunds.run(redis_url, prefix, task_id)
    eid = call_escalation_id(task_id, CALL_ID)
    opened(intake, service, eid)
    service.pause(task_id, OPERATOR, "look first")
    service.decide(eid, OPERATOR, "approve")
    eventually(lambda: refunds.refunded, what="the approved tool to run")
    time.sleep(3 * REREAD)
    assert refunds.model.calls == 1 and not run.done
    service.resume(task_id, OPERATOR)
    assert run.result(intake) == "tool said: refunded 740 EUR"
    assert refunds.model.calls == 2
