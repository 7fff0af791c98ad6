"""What the service tells its listeners (the Slack worker, the pager) after a commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.records import ActionResult, AuditRecord, EscalationRecord


@dataclass(frozen=True)
class ServiceEvent:
    """`escalation`: the escalation as the event left it (or, for an expiry, as it was
    just before); `audit`: the row the event wrote; `detail`: what neither holds (a
    page's event and result). Enough for a listener (the metrics) to need no read."""

    kind: str
    actor: str
    task_id: str | None = None
    escalation_id: str | None = None
    result: ActionResult | None = None
    escalation: EscalationRecord | None = None
    audit: AuditRecord | None = None
    detail: Mapping[str, str] | None = None


Listener = Callable[[ServiceEvent], None]
