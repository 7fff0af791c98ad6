"""The agent SDK: the half of the control plane that makes an agent obey (CONTRACTS §2, §3).

Loads with nothing but `redis` and `pydantic`: no Slack, SQLAlchemy or APScheduler.

- `TaskGuard` (threads) and `AsyncTaskGuard` (asyncio): `checkpoint()` raises `TaskKilled`
  on `kill:{task_id}` / `kill:agent:{agent}` / `kill:all`, waits while `pause:{task_id}`
  or `pause:agent:{agent}` exists, and returns the new `inbox:{task_id}` entries once;
  `escalate`, `request_approval`, `say`, `signal`, `finish`. The guard keeps the task's
  heartbeat (`task:{task_id}`, `tasks`: CONTRACTS §10) and reports a `failure` signal
  when an exception leaves it.
- `is_killed(redis, task_id)`: the original notes' one-line check.
"""

from escbot_agent.aio import AsyncTaskGuard
from escbot_agent.errors import (
    AgentError,
    ControlPlaneUnreachable,
    KillScope,
    PauseTimeout,
    TaskKilled,
)
from escbot_agent.fleet import TaskState
from escbot_agent.guard import TaskGuard, is_killed
from escbot_agent.payloads import (
    ApprovalOutcome,
    EscalationOptions,
    FailMode,
    GuardState,
    InboxMessage,
)

__all__ = [
    "AgentError",
    "ApprovalOutcome",
    "AsyncTaskGuard",
    "ControlPlaneUnreachable",
    "EscalationOptions",
    "FailMode",
    "GuardState",
    "InboxMessage",
    "KillScope",
    "PauseTimeout",
    "TaskGuard",
    "TaskKilled",
    "TaskState",
    "is_killed",
]
