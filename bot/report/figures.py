"""The figures of `escbot report` (CONTRACTS §14), computed from what `sources` read:
for everything, by task type and by agent. No I/O.

Definitions (docs/operators/report.md says the same to operators):
- time to acknowledge: opening to the first acknowledgement, of those acknowledged;
  time to decide: opening to a person's decision (the policy's and expiries excluded);
  median and p90 by linear interpolation between the closest ranks.
- decision shares, of the escalations decided: `approved` (as proposed), `edited`
  (approved with edited arguments), `rejected`, `terminated`, `redirected`, `expired`;
  `policy_decided`: decided by the policy at intake.
- recovery: pauses, and what ended them: resumed (`resume` or `restart`) or `abandon`;
  the rate is resumed / (resumed + abandoned).
- reviews: verdicts given on sampled reviews created in the window; flag rate = flagged /
  reviewed.
- cost per completed task: the `cost` signals of the tasks agents reported `completed`,
  summed, over their number.
- calibration: per confidence band (0.0-0.1 … 0.9-1.0), of the escalations a person
  decided, the share approved.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from bot.db.report_rows import EscalationFacts
from bot.report.sources import ReportData

UNKNOWN = "unknown"
OUTCOMES = ("approved", "edited", "rejected", "terminated", "redirected", "expired")
BANDS = 10
MACHINE = frozenset({"policy", "system"})


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Durations:
    values: tuple[float, ...]

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "count": len(self.values),
            "median": percentile(self.values, 0.5),
            "p90": percentile(self.values, 0.9),
        }


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    decided: int
    approved: int

    @property
    def label(self) -> str:
        return f"{self.low:.1f}-{self.high:.1f}"

    def as_json(self) -> dict[str, object]:
        return {
            "band": self.label,
            "low": self.low,
            "high": self.high,
            "decided": self.decided,
            "approved": self.approved,
            "approval_rate": _share(self.approved, self.decided),
        }


@dataclass
class Figures:
    """The figures of one group (everything, one task type, one agent)."""

    days: float
    escalations: int = 0
    ack: list[float] = field(default_factory=list)
    decision: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    policy_decided: int = 0
    paused: int = 0
    resumed: int = 0
    abandoned: int = 0
    reviewed: int = 0
    flagged: int = 0
    completed: int = 0
    cost: float = 0.0

    @property
    def decided(self) -> int:
        return sum(self.outcomes.values())

    def as_json(self) -> dict[str, object]:
        decided = self.decided
        return {
            "escalations": self.escalations,
            "escalations_per_day": self.escalations / self.days if self.days else None,
            "time_to_ack_seconds": Durations(tuple(self.ack)).as_json(),
            "time_to_decision_seconds": Durations(tuple(self.decision)).as_json(),
            "decided": decided,
            "decisions": dict(self.outcomes),
            "shares": {name: _share(n, decided) for name, n in self.outcomes.items()},
            "policy_decided": self.policy_decided,
            "policy_decided_share": _share(self.policy_decided, decided),
            "recovery": {
                "paused": self.paused,
                "resumed": self.resumed,
                "abandoned": self.abandoned,
                "rate": _share(self.resumed, self.resumed + self.abandoned),
            },
            "reviews": {
                "reviewed": self.reviewed,
                "flagged": self.flagged,
                "flag_rate": _share(self.flagged, self.reviewed),
            },
            "cost": {
                "completed_tasks": self.completed,
                "total": self.cost,
                "per_completed_task": self.cost / self.completed if self.completed else None,
            },
        }


@dataclass
class Report:
    since: datetime
    until: datetime
    overall: Figures
    by_task_type: dict[str, Figures]
    by_agent: dict[str, Figures]
    calibration: dict[str, list[Band]]  # agent (and "all") -> bands
    daily: dict[date, dict[str, int]]  # day -> task type -> escalations opened

    @property
    def days(self) -> float:
        return self.overall.days

    def as_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": self.days,
            "overall": self.overall.as_json(),
            "by_task_type": {k: v.as_json() for k, v in sorted(self.by_task_type.items())},
            "by_agent": {k: v.as_json() for k, v in sorted(self.by_agent.items())},
            "calibration": {
                k: [band.as_json() for band in v] for k, v in sorted(self.calibration.items())
            },
            "daily": {
                day.isoformat(): dict(sorted(counts.items()))
                for day, counts in sorted(self.daily.items())
            },
        }


class _Groups:
    """The overall figures and one per task type and per agent, filled together."""

    def __init__(self, days: float) -> None:
        self.days = days
        self.overall = Figures(days)
        self.task_types: dict[str, Figures] = {}
        self.agents: dict[str, Figures] = {}
        self._trios: dict[tuple[str | None, str | None], tuple[Figures, Figures, Figures]] = {}

    def each(self, agent: str | None, task_type: str | None) -> tuple[Figures, Figures, Figures]:
        trio = self._trios.get((agent, task_type))
        if trio is None:
            by_type = self.task_types.setdefault(task_type or UNKNOWN, Figures(self.days))
            by_agent = self.agents.setdefault(agent or UNKNOWN, Figures(self.days))
            trio = self._trios[(agent, task_type)] = (self.overall, by_type, by_agent)
        return trio


def outcome_of(escalation: EscalationFacts) -> str | None:
    state = escalation.state
    if state == "approved" and escalation.edited:
        return "edited"
    return state if state in OUTCOMES else None  # None: still open


def by_person(escalation: EscalationFacts) -> bool:
    return escalation.decided_by is not None and escalation.decided_by not in MACHINE


def build_report(data: ReportData) -> Report:
    days = max((data.until - data.since).total_seconds() / 86400, 1 / 86400)
    groups = _Groups(days)
    bands: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in range(BANDS)])
    daily: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in data.escalations:
        outcome = _escalation(groups, e)
        daily[e.day][e.task_type or UNKNOWN] += 1
        if e.confidence is not None and outcome is not None and by_person(e):
            band = min(int(max(e.confidence, 0.0) * BANDS), BANDS - 1)
            approved = outcome in ("approved", "edited")
            for key in (e.agent, "all"):
                counts = bands[key][band]
                counts[0] += 1
                counts[1] += approved
    _recovery(groups, data)
    for review in data.reviews:
        if review.verdict is None:
            continue
        for figures in groups.each(review.agent, review.task_type):
            figures.reviewed += 1
            figures.flagged += review.verdict == "flagged"
    for done in data.completed:
        task_type = done.task_type or data.tasks.get(done.task_id, (done.agent, None))[1]
        cost = data.costs.get(done.task_id, 0.0)
        for figures in groups.each(done.agent, task_type):
            figures.completed += 1
            figures.cost += cost
    calibration = {
        agent: [
            Band(i / BANDS, (i + 1) / BANDS, decided, approved)
            for i, (decided, approved) in enumerate(counts)
        ]
        for agent, counts in bands.items()
    }
    return Report(
        data.since,
        data.until,
        groups.overall,
        groups.task_types,
        groups.agents,
        calibration,
        {date.fromisoformat(day): dict(counts) for day, counts in daily.items()},
    )


def _escalation(groups: _Groups, e: EscalationFacts) -> str | None:
    """Counted into its three groups; its outcome (None while open)."""
    outcome = outcome_of(e)
    ack = None if e.ack_seconds is None else max(e.ack_seconds, 0.0)
    decided = e.decision_seconds if outcome is not None and by_person(e) else None
    decided = None if decided is None else max(decided, 0.0)
    policy = outcome is not None and e.decided_by == "policy" and e.policy_rule
    for figures in groups.each(e.agent, e.task_type):
        figures.escalations += 1
        if ack is not None:
            figures.ack.append(ack)
        if decided is not None:
            figures.decision.append(decided)
        if outcome is not None:
            figures.outcomes[outcome] += 1
        figures.policy_decided += policy
    return outcome


def _recovery(groups: _Groups, data: ReportData) -> None:
    for row in data.recovery:
        if row.target.startswith("agent:"):
            agent, task_type = row.target.removeprefix("agent:"), None
        else:
            agent, task_type = data.tasks.get(row.target, (UNKNOWN, None))
        for figures in groups.each(agent, task_type):
            if row.action == "pause":
                figures.paused += 1
            elif row.action in ("resume", "restart"):
                figures.resumed += 1
            elif row.action == "abandon":
                figures.abandoned += 1
