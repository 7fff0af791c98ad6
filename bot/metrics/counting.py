"""Counters and histograms of what this process did, moved by the service's events (one
listener, so each action is counted once, where it happened, whichever way it came in).

Prometheus adds them up across replicas; the gauges (`bot/metrics/gauges.py`) are read
from the shared database and Redis instead."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from bot.core.events import ServiceEvent
from bot.metrics.labels import DEFAULT_LIMIT, LabelFolder
from bot.records import AuditAction, EscalationRecord

# Seconds: a click within seconds, a tier's deadline in minutes, a night in hours.
DURATION_BUCKETS = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    14400.0, 43200.0, 86400.0,
)  # fmt: skip
# No `_created` series beside every counter and histogram: they double a scrape's size and
# Prometheus reads a counter's restarts from its drops anyway.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

MACHINE_ACTORS = frozenset({"policy", "system"})
OVERRIDES = frozenset(
    {
        AuditAction.KILL,
        AuditAction.KILL_ALL,
        AuditAction.REVIVE,
        AuditAction.PAUSE,
        AuditAction.RESUME,
        AuditAction.REDIRECT,
        AuditAction.MESSAGE,
        AuditAction.ESCALATE,
        "restart",
        "abandon",
    }
)


def decided_by(actor: str) -> str:
    """`human` or `policy` (the policy at intake, and the clock's expiry)."""
    return "policy" if actor in MACHINE_ACTORS else "human"


class ServiceMetrics:
    """The listener (`metrics(event)`) and the series it moves, in a registry of its own
    (two services in one process count apart, as two replicas do)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, label_limit: int = DEFAULT_LIMIT
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.task_type = LabelFolder(label_limit)
        self.trigger = LabelFolder(label_limit)
        r = self.registry
        self.escalations = Counter(
            "escbot_escalations", "Escalations opened", ["task_type", "severity", "kind"],
            registry=r,
        )  # fmt: skip
        self.decisions = Counter(
            "escbot_decisions", "Escalations decided", ["decision", "by"], registry=r
        )
        self.time_to_ack = Histogram(
            "escbot_time_to_ack_seconds",
            "From opening to the first acknowledgement",
            ["task_type", "severity"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.time_to_decision = Histogram(
            "escbot_time_to_decision_seconds",
            "From opening to a person's decision",
            ["task_type", "severity"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.overrides = Counter(
            "escbot_overrides", "Overrides: kills, pauses, redirects…", ["action"], registry=r
        )
        self.triggers = Counter(
            "escbot_triggers", "Automated triggers fired", ["trigger"], registry=r
        )
        self.reviews = Counter("escbot_reviews", "Review verdicts", ["verdict"], registry=r)
        self.pages = Counter("escbot_pages", "PagerDuty events", ["event", "result"], registry=r)

    def __call__(self, event: ServiceEvent) -> None:
        escalation = event.escalation or (event.result.escalation if event.result else None)
        if event.kind == "opened" and escalation is not None:
            self.escalations.labels(
                self.task_type(escalation.task_type), escalation.severity, escalation.kind
            ).inc()
        elif event.kind == "opened" and event.detail is not None:  # opened in a batch
            opened = event.detail
            self.escalations.labels(
                self.task_type(opened["task_type"] or None), opened["severity"], opened["kind"]
            ).inc()
        elif event.kind == "decided" and escalation is not None:
            self._decided(event, escalation)
        elif event.kind == "expired":
            self.decisions.labels("expired", "policy").inc()
        elif event.kind == "acknowledged" and escalation is not None:
            self._acknowledged(escalation)
        elif event.kind == "reviewed" and event.audit is not None:
            verdict = str((event.audit.detail or {}).get("verdict", "unknown"))
            self.reviews.labels(verdict).inc()
        elif event.kind == "paged" and event.detail is not None:
            self.pages.labels(event.detail["event"], event.detail["result"]).inc()
        self._audited(event)

    def _audited(self, event: ServiceEvent) -> None:
        row = event.audit
        if row is None:
            return
        if row.action == AuditAction.TRIGGER:
            self.triggers.labels(self.trigger(str((row.detail or {}).get("trigger")))).inc()
        elif row.action in OVERRIDES and not (
            row.action == AuditAction.ESCALATE and row.actor in MACHINE_ACTORS
        ):  # a climb by the sweep is no override
            self.overrides.labels(row.action).inc()

    def _decided(self, event: ServiceEvent, escalation: EscalationRecord) -> None:
        by = decided_by(event.actor)
        if by == "policy":  # decided at intake: opened too, without a card
            self.escalations.labels(
                self.task_type(escalation.task_type), escalation.severity, escalation.kind
            ).inc()
        self.decisions.labels(escalation.state, by).inc()
        if by == "human" and escalation.decided_at is not None:
            self.time_to_decision.labels(
                self.task_type(escalation.task_type), escalation.severity
            ).observe(max(0.0, (escalation.decided_at - escalation.created_at).total_seconds()))

    def _acknowledged(self, escalation: EscalationRecord) -> None:
        if escalation.acknowledged_at is None:
            return
        seconds = (escalation.acknowledged_at - escalation.created_at).total_seconds()
        self.time_to_ack.labels(self.task_type(escalation.task_type), escalation.severity).observe(
            max(0.0, seconds)
        )
