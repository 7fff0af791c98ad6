"""The domain service, one module per job (see docs/architecture.md):

- `base`: the action path every change takes (role check, audit row, Redis effect);
- `escalations`: open, acknowledge and decide escalations;
- `overrides`: kill, pause, revive, resume, redirect and relay messages;
- `recovery`: restart a paused task with new instructions, abandon a task;
- `reads`: escalations, task status, the overview;
- `reconcile`: write the database's truth back into Redis; rejected stream entries;
- `sweep`: tier climbs and expiry;
- `paging`: PagerDuty events owed, for the pager;
- `delivery`: cards and announcements owed to the chat, for the Slack worker;
- `reviews`, `review_verdicts`, `review_delivery`: sampled reviews, their verdicts (a
  flag may pause), and their cards owed to the chat.
"""

from bot.core.events import Listener, ServiceEvent
from bot.core.paging import PageJob
from bot.core.reconcile import ReconcileReport
from bot.core.service import EscalationService
from bot.core.sweep import SweepReport

__all__ = [
    "EscalationService",
    "Listener",
    "PageJob",
    "ReconcileReport",
    "ServiceEvent",
    "SweepReport",
]
