"""What the service tells its listeners (the Slack worker, the pager) after a commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.records import ActionResult


@dataclass(frozen=True)
class ServiceEvent:
    kind: str
    actor: str
    task_id: str | None = None
    escalation_id: str | None = None
    result: ActionResult | None = None


Listener = Callable[[ServiceEvent], None]
