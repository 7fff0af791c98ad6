"""`escbot-agent mcp` (`escbot-agent[mcp]`): an MCP server over stdio, so that an agent that
speaks MCP obeys and asks without an SDK (CONTRACTS §16).

One server is one task: it keeps an `AsyncTaskGuard` (heartbeat, push kills) for
`--task-id`, and its tools are `request_approval`, `check_control`, `escalate`, `say` and
`signal`. A kill is never an MCP error: every tool answers `{"state": "killed", ...}`, so
the agent is told to stop in words it can act on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer

from escbot_agent.aio import AsyncTaskGuard
from escbot_agent.errors import TaskKilled
from escbot_agent.payloads import EscalationOptions

Severity = Literal["low", "medium", "high", "critical"]
INSTRUCTIONS = (
    "An operator can stop or pause this task. Call check_control before each step and "
    "stop when it says killed, wait when it says paused. Call request_approval before an "
    "action that needs a person's approval, and act only when it says approved, with the "
    "arguments it returns."
)


def killed_answer(killed: TaskKilled) -> dict[str, Any]:
    return {
        "state": "killed",
        "reason": killed.reason,
        "by": killed.by,
        "scope": killed.scope,
        "instruction": "Stop now: do not take another step of this task.",
    }


def build_server(guard: AsyncTaskGuard) -> MCPServer[Any]:
    """The MCP server for one task, on a started guard."""
    server: MCPServer[Any] = MCPServer("escbot-agent", instructions=INSTRUCTIONS)

    @server.tool()
    async def request_approval(
        action: str,
        reason: str,
        args: dict[str, Any] | None = None,
        timeout: float = 600.0,
        severity: Severity = "medium",
        escalation_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask a person (or the bot's policy) to approve an action, and wait for the decision
        (at most `timeout` seconds). Act only when `approved` is true, with `args`."""
        options = EscalationOptions(severity=severity)
        if escalation_id:
            options["escalation_id"] = escalation_id
        try:
            outcome = await guard.request_approval(
                action, args or {}, reason=reason, timeout=timeout, **options
            )
        except TaskKilled as killed:
            return killed_answer(killed)
        answer = dataclasses.asdict(outcome)
        answer["approved"] = outcome.approved
        answer["approvals"] = list(outcome.approvals)
        answer["state"] = "running"
        return answer

    @server.tool()
    async def check_control() -> dict[str, Any]:
        """Whether this task may go on: running, paused (wait and ask again) or killed (stop),
        and the operators' messages not yet seen."""
        killed, paused = guard.killed, guard.paused
        if killed is not None:
            return {"state": "killed", "reason": killed.reason, "by": killed.by, "messages": []}
        if paused is not None:
            return {"state": "paused", "reason": paused.reason, "by": paused.by, "messages": []}
        try:
            messages = await guard.checkpoint(step="mcp")
        except TaskKilled as stop:
            return {**killed_answer(stop), "messages": []}
        return {
            "state": "running",
            "messages": [dataclasses.asdict(message) for message in messages],
        }

    @server.tool()
    async def escalate(
        reason: str,
        severity: Severity = "medium",
        action: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Tell the operators about a problem (an exception escalation); returns its id."""
        eid = await guard.escalate(reason, action=action, args=args, severity=severity)
        return {"escalation_id": eid}

    @server.tool()
    async def say(text: str, escalation_id: str | None = None) -> dict[str, Any]:
        """Post a line in the task's (or the escalation's) Slack thread."""
        return {"id": await guard.say(text, escalation_id)}

    @server.tool()
    async def signal(name: str, value: float = 1, detail: str | None = None) -> dict[str, Any]:
        """Report what the agent observed (cost, failure, confidence...) to the bot's triggers."""
        return {"id": await guard.signal(name, value, detail)}

    return server


async def serve_stdio(
    task_id: str,
    *,
    agent: str = "agent",
    task_type: str | None = None,
    url: str | None = None,
    prefix: str | None = None,
) -> None:
    async with AsyncTaskGuard(
        task_id, agent=agent, task_type=task_type, url=url, prefix=prefix
    ) as guard:
        await build_server(guard).run_stdio_async()
