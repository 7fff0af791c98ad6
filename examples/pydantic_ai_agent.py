"""A Pydantic AI refund agent that asks the bot before it refunds (escbot-agent[pydantic-ai]).

    python examples/pydantic_ai_agent.py --task-id pa-1

No model and no network: a FunctionModel asks for a 740 EUR refund, then reports what the
tool said. The tool is `requires_approval=True`; the capability resolves each call through
the bot: decide it in Slack or with `escbot decide <escalation id> approve --by alice` (or
`--args '{"amount": 500}'`: the tool runs with the approver's arguments, or `reject
--comment ...`: the model is told why). Kills and pauses are checked before each model
request. It reads `REDIS_URL` and `REDIS_KEY_PREFIX` like the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from escbot_agent import AsyncTaskGuard, TaskKilled
from escbot_agent.adapters.common import call_escalation_id
from escbot_agent.adapters.pydantic_ai import EscbotCapability
from pydantic_ai import Agent, Tool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

EXIT_KILLED = 3
CALL_ID = "refund-1"


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    said = [
        part.content
        for message in messages
        for part in getattr(message, "parts", [])
        if isinstance(part, ToolReturnPart)
    ]
    if said:
        return ModelResponse(parts=[TextPart(f"done: {said[-1]}")])
    args = {"amount": 740, "currency": "EUR"}
    return ModelResponse(parts=[ToolCallPart("issue_refund", args, tool_call_id=CALL_ID)])


def issue_refund(amount: int, currency: str = "EUR") -> str:
    """Refund the customer's order."""
    return f"refunded {amount} {currency}"


async def run(options: argparse.Namespace) -> int:
    agent = Agent(FunctionModel(scripted), tools=[Tool(issue_refund, requires_approval=True)])
    try:
        async with AsyncTaskGuard(
            options.task_id, agent=options.agent, task_type="refund"
        ) as guard:
            capability = EscbotCapability(
                guard, timeout=options.timeout, reason="refund above the 500 EUR limit"
            )
            print(
                f"waiting for approval: escalation {call_escalation_id(guard.task_id, CALL_ID)}",
                flush=True,
            )
            result = await agent.run("refund order 4711", capabilities=[capability])
            print(result.output, flush=True)
            await guard.finish(notice=result.output)
    except TaskKilled as killed:
        print(f"killed by {killed.by}: {killed.reason}", flush=True)
        return EXIT_KILLED
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--agent", default="pydantic-ai-demo")
    parser.add_argument("--timeout", type=float, default=300.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
