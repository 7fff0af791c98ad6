"""The agent SDK: the half of the control plane that makes an agent obey (CONTRACTS §2, §3).

Loads with nothing but `redis` and `pydantic`: no Slack, SQLAlchemy or APScheduler.

- `TaskGuard` (threads) and `AsyncTaskGuard` (asyncio): `checkpoint()` raises `TaskKilled`
  on `kill:{task_id}` / `kill:all`, waits while `pause:{task_id}` exists, and returns the
  new `inbox:{task_id}` entries once; `escalate`, `request_approval`, `say`.
- `is_killed(redis, task_id)`: the original notes' one-line check.
"""

from bot.agent.aio import AsyncTaskGuard
from bot.agent.errors import AgentError, ControlPlaneUnreachable, PauseTimeout, TaskKilled
from bot.agent.guard import TaskGuard, is_killed
from bot.agent.payloads import (
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
    "PauseTimeout",
    "TaskGuard",
    "TaskKilled",
    "is_killed",
]
