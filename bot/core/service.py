"""The escalation service: the one path that every way in (Slack, streams, the sweep, the
CLI) uses. Each of its parts lives in a module of its own; this class only puts them
together, so callers hold one object."""

from __future__ import annotations

from bot.core.decisions import Decisions
from bot.core.intake_batch import BatchOpening
from bot.core.overrides import Overrides
from bot.core.paging import Paging
from bot.core.policy_changes import PolicyChanges
from bot.core.raw_views import RawViews
from bot.core.reads import Reads
from bot.core.reconcile import Reconcile
from bot.core.recovery import Recovery
from bot.core.review_verdicts import ReviewVerdicts
from bot.core.reviews import Reviews
from bot.core.sweep import Sweep
from bot.core.triggers import Triggers


class EscalationService(
    Triggers,
    BatchOpening,  # Escalations, a batch at a time too
    Decisions,
    ReviewVerdicts,  # before Overrides: a flag pauses through it
    Overrides,
    Recovery,
    RawViews,
    Reads,
    Reconcile,
    Sweep,
    Paging,
    PolicyChanges,
    Reviews,
):
    """Escalations (open, acknowledge, decide), overrides (kill, pause, inbox), recovery
    (restart, abandon), reads,
    reconcile, the sweep's tier work, paging, policy changes and sampled reviews (and
    their verdicts), over one store, Redis and the policy in force."""
