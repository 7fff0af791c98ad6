"""LangGraph (`escbot-agent[langgraph]`): a tool-approval node and a guarded model node.

    gate = ApprovalGate(guard, tools={"issue_refund"}, timeout=600)
    graph = StateGraph(MessagesState)
    graph.add_node("model", gate.before_model(call_model))  # a checkpoint first
    graph.add_node("approval", gate.node)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", gate.after_model, ["approval", END])
    graph.add_conditional_edges("approval", gate.after_approval, ["tools", "model"])
    graph.add_edge("tools", "model")
    app = graph.compile(checkpointer=InMemorySaver())
    result = gate.invoke(app, {"messages": [...]}, {"configurable": {"thread_id": "t1"}})

- `node`: the last AI message's tool calls that need approval `interrupt()` the graph with
  one request per call (its escalation id from the tool call id). The graph stops, and is
  saved by its checkpointer.
- `decisions(result)`: `request_approval` for each request (the policy's decision at once
  when it decides alone, else a person's), as `Command(resume=...)`. Resumed, the node
  keeps approved calls (with the approver's arguments when edited) and answers rejected
  and expired ones with a `ToolMessage` saying why, so the model sees it.
- `before_model(node)`: `guard.checkpoint()` before each model call: a kill raises
  `TaskKilled` out of `invoke`, a pause holds the graph there.
- `invoke(app, input, config)`: `app.invoke`, resumed with the decisions until it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.graph import END
from langgraph.types import Command, Interrupt, interrupt

from escbot_agent.adapters.common import (
    ToolVerdict,
    call_escalation_id,
    verdict_of,
    with_escalation_id,
)
from escbot_agent.guard import TaskGuard
from escbot_agent.payloads import EscalationOptions

MARK = "escbot-approval"
S = TypeVar("S")
R = TypeVar("R")


def _last_ai(messages: Sequence[BaseMessage]) -> AIMessage | None:
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return message
    return None


def _is_ours(item: object) -> bool:
    return isinstance(item, Interrupt) and isinstance(item.value, Mapping) and MARK in item.value


class ApprovalGate:
    """`guard`: the task's started `TaskGuard`. `tools`: the names that need approval (None:
    every tool). `timeout`: seconds to wait for each decision. `reason`: the escalation's
    reason (`{tool}` is the tool's name)."""

    def __init__(
        self,
        guard: TaskGuard,
        *,
        tools: Collection[str] | None = None,
        timeout: float = 600.0,
        reason: str = "the agent wants to call {tool}",
        options: EscalationOptions | None = None,
    ) -> None:
        self.guard = guard
        self.tools = None if tools is None else frozenset(tools)
        self.timeout = timeout
        self.reason = reason
        self.options: EscalationOptions = options or EscalationOptions()

    # ------------------------------------------------------------------ inside the graph

    def before_model(self, node: Callable[[S], R]) -> Callable[[S], R]:
        """`node` with a checkpoint first."""

        def guarded(state: S) -> R:
            self.guard.checkpoint(step="model call")
            return node(state)

        guarded.__name__ = getattr(node, "__name__", "model")
        return guarded

    def needs_approval(self, name: str) -> bool:
        return self.tools is None or name in self.tools

    def node(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The approval node (state with `messages`, as `MessagesState`)."""
        last = _last_ai(state["messages"])
        if last is None:
            return {}
        calls = [call for call in last.tool_calls if self.needs_approval(call["name"])]
        if not calls:
            return {}
        requests = [
            {
                "escalation_id": call_escalation_id(self.guard.task_id, str(call["id"])),
                "call_id": call["id"],
                "action": call["name"],
                "args": call["args"],
            }
            for call in calls
        ]
        resumed = interrupt({MARK: requests})
        verdicts = {key: ToolVerdict.from_resume(value) for key, value in dict(resumed).items()}
        kept: list[Any] = []
        answers: list[BaseMessage] = []
        for call in last.tool_calls:
            eid = call_escalation_id(self.guard.task_id, str(call["id"]))
            if not self.needs_approval(call["name"]):
                kept.append(call)
                continue
            verdict = verdicts.get(eid)
            if verdict is None:
                raise ValueError(f"resumed without a decision for escalation {eid}")
            if verdict.allowed:
                kept.append({**call, "args": verdict.args or {}})
            else:
                answers.append(
                    ToolMessage(
                        content=verdict.message or "not approved",
                        tool_call_id=str(call["id"]),
                        name=call["name"],
                        status="error",
                    )
                )
        updated = last.model_copy(update={"tool_calls": kept})
        return {"messages": [updated, *answers]}

    def after_model(self, state: Mapping[str, Any]) -> str:
        """Route after the model: to the approval node when it called a tool, else END."""
        last = state["messages"][-1]
        return "approval" if isinstance(last, AIMessage) and last.tool_calls else END

    def after_approval(self, state: Mapping[str, Any]) -> str:
        """Route after the approval node: `tools` when a call is left to run, else `model`."""
        last = _last_ai(state["messages"])
        return "tools" if last is not None and last.tool_calls else "model"

    # ------------------------------------------------------------------ outside it

    def decisions(self, result: Mapping[str, Any]) -> Command[Any] | None:
        """The bot's decisions on the graph's approval interrupts, as the `Command` that
        resumes it; None when the graph did not stop for an approval."""
        ours = [
            item
            for item in result.get("__interrupt__", ())
            if isinstance(item, Interrupt)
            and isinstance(item.value, Mapping)
            and MARK in item.value
        ]
        if not ours:
            return None
        answers: dict[str, Any] = {}
        for item in ours:
            answers[item.id] = {
                request["escalation_id"]: self._decide(request).as_resume()
                for request in item.value[MARK]
            }
        if len(ours) == 1:
            return Command(resume=answers[ours[0].id])
        return Command(resume=answers)

    def _decide(self, request: Mapping[str, Any]) -> ToolVerdict:
        outcome = self.guard.request_approval(
            request["action"],
            request["args"],
            reason=self.reason.format(tool=request["action"]),
            timeout=self.timeout,
            **with_escalation_id(self.options, request["escalation_id"]),
        )
        return verdict_of(outcome)

    def invoke(
        self, app: Any, input: Any, config: Mapping[str, Any], *, max_rounds: int = 50
    ) -> dict[str, Any]:
        """`app.invoke(input, config)`, resumed with the bot's decisions until it ends."""
        result: dict[str, Any] = app.invoke(input, config)
        for _ in range(max_rounds):
            command = self.decisions(result)
            if command is None:
                return result
            result = app.invoke(command, config)
        raise RuntimeError(f"still waiting for approvals after {max_rounds} rounds")
