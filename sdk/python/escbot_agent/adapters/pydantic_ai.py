"""Pydantic AI (`escbot-agent[pydantic-ai]`): a capability that makes an agent run obey.

    agent = Agent(model, tools=[Tool(issue_refund, requires_approval=True)],
                  capabilities=[EscbotCapability(guard, timeout=600)])

- Before each model request: `await guard.checkpoint()`: a kill raises `TaskKilled` out of
  the run, a pause holds it there.
- Each approval-required tool call (`requires_approval=True`, or a tool that raises
  `ApprovalRequired`) goes through `guard.request_approval`, one escalation per call
  (its id from the tool call id): approved runs it, edited runs it with the approver's
  arguments (`ToolApproved(override_args=...)`), rejected, redirected and expired return
  `ToolDenied` with the reason and the approver's comment to the model.
- After each model response: the tokens it used as a `cost` signal (CONTRACTS §9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelResponse
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.tools import (
    DeferredToolRequests,
    DeferredToolResults,
    RunContext,
    ToolApproved,
    ToolDenied,
)

from escbot_agent.adapters.common import call_escalation_id, verdict_of, with_escalation_id
from escbot_agent.aio import AsyncTaskGuard
from escbot_agent.payloads import EscalationOptions


@dataclass
class EscbotCapability(AbstractCapability[Any]):
    """`guard`: the task's started `AsyncTaskGuard`. `timeout`: seconds to wait for each
    decision. `reason`: the escalation's reason (`{tool}` is the tool's name).
    `cost_per_token`: when given, the `cost` signal is tokens times this, else tokens."""

    guard: AsyncTaskGuard
    timeout: float = 600.0
    reason: str = "the agent wants to call {tool}"
    options: EscalationOptions = field(default_factory=lambda: EscalationOptions())
    cost_per_token: float | None = None
    report_cost: bool = True

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # built in code, with a live guard: not from a spec file

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        await self.guard.checkpoint(step="model request")
        return request_context

    async def after_model_request(
        self,
        ctx: RunContext[Any],
        *,
        request_context: ModelRequestContext,
        response: ModelResponse,
    ) -> ModelResponse:
        usage = response.usage
        tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        if self.report_cost and tokens:
            value = tokens * self.cost_per_token if self.cost_per_token is not None else tokens
            detail = f"{usage.input_tokens} input, {usage.output_tokens} output tokens"
            await self.guard.signal("cost", value, detail)
        return response

    async def handle_deferred_tool_calls(
        self, ctx: RunContext[Any], *, requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        if not requests.approvals:
            return None
        results = DeferredToolResults()
        for call in requests.approvals:
            outcome = await self.guard.request_approval(
                call.tool_name,
                call.args_as_dict(),
                reason=self.reason.format(tool=call.tool_name),
                timeout=self.timeout,
                **with_escalation_id(
                    self.options, call_escalation_id(self.guard.task_id, call.tool_call_id)
                ),
            )
            verdict = verdict_of(outcome)
            if verdict.verdict == "edited":
                results.approvals[call.tool_call_id] = ToolApproved(override_args=verdict.args)
            elif verdict.allowed:
                results.approvals[call.tool_call_id] = ToolApproved()
            else:
                results.approvals[call.tool_call_id] = ToolDenied(verdict.message or "denied")
            if verdict.by:
                results.answered_by[call.tool_call_id] = verdict.by
        return results
