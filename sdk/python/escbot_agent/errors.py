"""What a guard raises. `TaskKilled` is a BaseException on purpose (see its docstring)."""

from __future__ import annotations

from typing import Literal

from escbot_agent.contracts import ControlValue

KillScope = Literal["task", "agent", "all"]


class TaskKilled(BaseException):
    """The task must stop: `kill:{task_id}`, `kill:agent:{agent}` or `kill:all` is set.

    Derived from BaseException, like KeyboardInterrupt and asyncio.CancelledError, so that
    an agent's `except Exception:` retry loop cannot swallow a kill. Catch it by name
    where the agent cleans up; the kill stays until an operator revives the task, so every
    later checkpoint raises it again. `scope` says which key: "task" (this task's own),
    "agent" (every task of `agent`) or "all".
    """

    def __init__(
        self,
        task_id: str,
        key: str,
        control: ControlValue,
        *,
        scope: KillScope | None = None,
        agent: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.key = key
        self.control = control
        self.scope: KillScope = scope or ("all" if key.endswith("kill:all") else "task")
        self.agent = agent
        if self.scope == "all":
            what = "all tasks were"
        elif self.scope == "agent":
            what = f"every task of agent {agent} was"
        else:
            what = f"task {task_id} was"
        when = f" at {control.at}" if control.at else ""
        super().__init__(f"{what} killed by {control.by}{when}: {control.reason}")

    @property
    def reason(self) -> str:
        return self.control.reason

    @property
    def by(self) -> str:
        return self.control.by

    @property
    def at(self) -> str:
        return self.control.at

    @property
    def all_tasks(self) -> bool:
        """True when the kill is `kill:all` rather than this task's own key."""
        return self.scope == "all"

    @property
    def agent_wide(self) -> bool:
        """True when the kill is `kill:agent:{agent}`: every task of this agent stops."""
        return self.scope == "agent"


class AgentError(Exception):
    """Base of the ordinary errors of the agent SDK."""


class PauseTimeout(AgentError):
    """A checkpoint waited `max_pause` seconds and the task is still held.

    `control` is the pause (reason, by, at), or None when the hold was the control plane
    being unreachable under `on_unreachable="pause"`.
    """

    def __init__(self, task_id: str, waited: float, control: ControlValue | None) -> None:
        self.task_id = task_id
        self.waited = waited
        self.control = control
        if control is not None:
            why = f"paused by {control.by}: {control.reason}"
        else:
            why = "the control plane is unreachable (held as paused)"
        super().__init__(f"task {task_id} still held after {waited:.1f}s: {why}")

    @property
    def unreachable(self) -> bool:
        return self.control is None


class ControlPlaneUnreachable(AgentError):
    """Redis cannot be reached: raised by checkpoints under `on_unreachable="raise"`, and
    by writes (`escalate`, `say`, `signal`, `finish`) in every mode. `escalation_id` names
    the escalation that was not written, so a retry with the same id stays one escalation."""

    def __init__(self, message: str, *, escalation_id: str | None = None) -> None:
        super().__init__(message)
        self.escalation_id = escalation_id
