"""The OpenAI Agents SDK (`escbot-agent[openai-agents]`): tools that need the bot's approval,
and run hooks that make a run obey.

    approvals = EscbotApprovals(guard, timeout=600)
    agent = Agent(name="billing", model=..., tools=[approvals.gate(issue_refund)])
    result = await approvals.run(agent, "refund order 4711")

- `gate(tool)`: the tool's `needs_approval` asks the bot (CONTRACTS §8): the run stops with
  an interruption for each call, and `resolve(result)` turns each one's `decision:{id}`
  (the policy's at once when it decides alone, else a person's) into
  `RunState.approve` or `RunState.reject` (with the reason and the approver's comment as
  the message the model sees). Edited arguments replace the model's when the tool runs.
- `hooks`: `on_llm_start` is a checkpoint (a kill raises `TaskKilled` out of the run, a
  pause holds it), `on_llm_end` reports the tokens used as a `cost` signal.
- `run(agent, input)`: `Runner.run` with the hooks, resolving interruptions until done.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper, RunHooks, Runner, RunResult
from agents.items import ModelResponse, ToolApprovalItem
from agents.run_state import RunState
from agents.tool_context import ToolContext

from escbot_agent.adapters.common import (
    ToolVerdict,
    call_escalation_id,
    verdict_of,
    with_escalation_id,
)
from escbot_agent.aio import AsyncTaskGuard
from escbot_agent.payloads import EscalationOptions


class EscbotRunHooks(RunHooks[Any]):
    """A checkpoint before each model call, a `cost` signal after it."""

    def __init__(self, guard: AsyncTaskGuard, *, cost_per_token: float | None = None) -> None:
        self.guard = guard
        self.cost_per_token = cost_per_token

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[Any],
    ) -> None:
        await self.guard.checkpoint(step=f"{agent.name}: model call")

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        usage = response.usage
        tokens = usage.input_tokens + usage.output_tokens
        if tokens:
            value = tokens * self.cost_per_token if self.cost_per_token is not None else tokens
            detail = f"{usage.input_tokens} input, {usage.output_tokens} output tokens"
            await self.guard.signal("cost", value, detail)


class EscbotApprovals:
    """`guard`: the task's started `AsyncTaskGuard`; `timeout`: seconds to wait for each
    decision; `reason`: the escalation's reason (`{tool}` is the tool's name)."""

    def __init__(
        self,
        guard: AsyncTaskGuard,
        *,
        timeout: float = 600.0,
        reason: str = "the agent wants to call {tool}",
        options: EscalationOptions | None = None,
        cost_per_token: float | None = None,
    ) -> None:
        self.guard = guard
        self.timeout = timeout
        self.reason = reason
        self.options: EscalationOptions = options or EscalationOptions()
        self.hooks = EscbotRunHooks(guard, cost_per_token=cost_per_token)
        self._edited: dict[str, dict[str, Any]] = {}  # call id → the approver's arguments

    def gate(self, tool: FunctionTool) -> FunctionTool:
        """A copy of `tool` whose every call needs the bot's decision."""
        invoke = tool.on_invoke_tool

        async def needs_approval(
            context: RunContextWrapper[Any], params: dict[str, Any], call_id: str
        ) -> bool:
            return True  # decided in `resolve`, through request_approval and the policy

        async def on_invoke(context: ToolContext[Any], arguments: str) -> Any:
            edited = self._edited.pop(context.tool_call_id, None)
            if edited is not None:
                arguments = json.dumps(edited)
            return await invoke(context, arguments)

        return dataclasses.replace(tool, needs_approval=needs_approval, on_invoke_tool=on_invoke)

    async def decide(self, item: ToolApprovalItem) -> ToolVerdict:
        """The bot's decision on one interrupted call (one escalation per call id)."""
        name = item.name or "tool"
        try:
            args = json.loads(item.arguments or "{}")
        except json.JSONDecodeError:
            args = {"arguments": item.arguments}
        call_id = item.call_id or name
        outcome = await self.guard.request_approval(
            name,
            args if isinstance(args, dict) else {"arguments": args},
            reason=self.reason.format(tool=name),
            timeout=self.timeout,
            **with_escalation_id(self.options, call_escalation_id(self.guard.task_id, call_id)),
        )
        return verdict_of(outcome)

    async def resolve(self, result: RunResult) -> RunState[Any]:
        """The run's state with every interruption approved or rejected by the bot."""
        state = result.to_state()
        for item in result.interruptions:
            verdict = await self.decide(item)
            if verdict.verdict == "edited" and item.call_id and verdict.args is not None:
                self._edited[item.call_id] = verdict.args
            if verdict.allowed:
                state.approve(item)
            else:
                state.reject(item, rejection_message=verdict.message)
        return state

    async def run(
        self, agent: Agent[Any], input: str | list[Any], *, max_rounds: int = 50, **kwargs: Any
    ) -> RunResult:
        """`Runner.run` with the hooks, its interruptions resolved by the bot until it ends."""
        kwargs.setdefault("hooks", self.hooks)
        result = await Runner.run(agent, input, **kwargs)
        for _ in range(max_rounds):
            if not result.interruptions:
                return result
            result = await Runner.run(agent, await self.resolve(result), **kwargs)
        raise RuntimeError(f"still interrupted after {max_rounds} rounds of approvals")
