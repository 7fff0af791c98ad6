"""An OpenAI Agents SDK refund agent that asks the bot before it refunds
(escbot-agent[openai-agents]).

    python examples/openai_agents_agent.py --task-id oa-1

No model and no network: a scripted `Model` asks for a 740 EUR refund, then reports what
the tool said. The gated tool interrupts the run; each interruption is approved or
rejected in the run state from the bot's decision: decide it in Slack or with
`escbot decide <escalation id> approve --by alice` (or `--args '{"amount": 500}'`, or
`reject --comment ...`). The run hooks check for kills and pauses before each model call
and report the tokens used as a `cost` signal. It reads `REDIS_URL` and
`REDIS_KEY_PREFIX` like the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, ModelSettings, Tool, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model, ModelTracing
from agents.testing.model import assistant_message, function_call
from agents.usage import Usage
from escbot_agent import AsyncTaskGuard, TaskKilled
from escbot_agent.adapters.common import call_escalation_id
from escbot_agent.adapters.openai_agents import EscbotApprovals

EXIT_KILLED = 3
CALL_ID = "refund-1"


class ScriptedModel(Model):
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
        said = [
            item.get("output")
            for item in (input if isinstance(input, list) else [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        usage = Usage(requests=1, input_tokens=120, output_tokens=30, total_tokens=150)
        if said:
            return ModelResponse([assistant_message(f"done: {said[-1]}")], usage, None)
        call = function_call("issue_refund", {"amount": 740, "currency": "EUR"}, call_id=CALL_ID)
        return ModelResponse([call], usage, None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


@function_tool
def issue_refund(amount: int, currency: str = "EUR") -> str:
    """Refund the customer's order."""
    return f"refunded {amount} {currency}"


async def run(options: argparse.Namespace) -> int:
    try:
        async with AsyncTaskGuard(
            options.task_id, agent=options.agent, task_type="refund"
        ) as guard:
            approvals = EscbotApprovals(
                guard,
                timeout=options.timeout,
                reason="refund above the 500 EUR limit",
                cost_per_token=0.00001,
            )
            agent = Agent(
                name="billing", model=ScriptedModel(), tools=[approvals.gate(issue_refund)]
            )
            eid = call_escalation_id(guard.task_id, CALL_ID)
            print(f"waiting for approval: escalation {eid}", flush=True)
            result = await approvals.run(agent, "refund order 4711")
            print(result.final_output, flush=True)
            await guard.finish(notice=str(result.final_output))
    except TaskKilled as killed:
        print(f"killed by {killed.by}: {killed.reason}", flush=True)
        return EXIT_KILLED
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--agent", default="openai-agents-demo")
    parser.add_argument("--timeout", type=float, default=300.0)
    set_tracing_disabled(True)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
