"""The report's charts, drawn with matplotlib as SVG (text as paths: no font, no network
needed to read them): time to decision, daily escalations per task type, decision shares
and the calibration curve. A chart with nothing to show says so, drawn all the same."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bot.report.figures import OUTCOMES, Report

SIZE = (7.5, 3.6)
MINUTE = 60.0
# Minutes: the histogram's edges, evenly spaced on a log scale from a few seconds to a day.
EDGES = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440)
MAX_SERIES = 8
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.DOTALL)


def _label(name: str) -> str:
    """A name as plain text: matplotlib reads `$…$` as mathematics (and refuses a lone
    `$`), and a legend label starting with `_` is hidden."""
    return name.replace("$", r"\$").lstrip("_") or "?"


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    text = _METADATA.sub("", text)  # the creator and date: nothing a reader needs
    return text[text.index("<svg") :]  # inline: no XML declaration or DOCTYPE


def _empty(axes: Axes, what: str) -> None:
    axes.text(0.5, 0.5, f"no {what} in this window", ha="center", va="center", fontsize=11)
    axes.set_xticks([])
    axes.set_yticks([])


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE)
    return figure, figure.add_subplot()


def time_to_decision(report: Report) -> str:
    figure, axes = _figure()
    minutes = [max(seconds / MINUTE, EDGES[0]) for seconds in report.overall.decision]
    if minutes:
        edges = [*EDGES, max(EDGES[-1] * 2, max(minutes) * 1.01)]
        axes.hist(minutes, bins=edges, color="#3b6ea5", edgecolor="white")
        axes.set_xscale("log")
        axes.set_xlabel("minutes from opening to a person's decision")
        axes.set_ylabel("escalations")
    else:
        _empty(axes, "decision by a person")
    axes.set_title("Time to decision")
    return _svg(figure)


def _top(names: Sequence[str], totals: dict[str, int]) -> list[str]:
    return sorted(names, key=lambda n: (-totals.get(n, 0), n))[:MAX_SERIES]


def daily_escalations(report: Report) -> str:
    figure, axes = _figure()
    days = sorted(report.daily)
    if days:
        totals = {name: f.escalations for name, f in report.by_task_type.items()}
        shown = _top(list(totals), totals)
        bottom = [0] * len(days)
        labels = [day.isoformat()[5:] for day in days]
        for name in [*shown, "other"]:
            counts = [
                sum(v for k, v in report.daily[day].items() if k not in shown)
                if name == "other"
                else report.daily[day].get(name, 0)
                for day in days
            ]
            if not any(counts):
                continue
            axes.bar(labels, counts, bottom=bottom, label=_label(name))
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        axes.set_ylabel("escalations opened")
        axes.legend(fontsize=8, loc="upper left")
        axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    else:
        _empty(axes, "escalation")
    axes.set_title("Escalations per day, by task type")
    return _svg(figure)


def decision_shares(report: Report) -> str:
    figure, axes = _figure()
    overall = report.overall
    if overall.decided:
        shares = [overall.outcomes[name] / overall.decided * 100 for name in OUTCOMES]
        bars = axes.barh(list(OUTCOMES), shares, color="#5a9e6f")
        axes.bar_label(bars, labels=[f"{s:.1f}%" for s in shares], fontsize=8, padding=2)
        axes.invert_yaxis()
        axes.set_xlim(0, 110)
        axes.set_xlabel(f"% of {overall.decided} decided ({overall.policy_decided} by the policy)")
    else:
        _empty(axes, "decision")
    axes.set_title("Decision shares")
    return _svg(figure)


def calibration(report: Report) -> str:
    figure, axes = _figure()
    agents = {k: v for k, v in report.calibration.items() if k != "all"}
    totals = {k: sum(b.decided for b in v) for k, v in agents.items()}
    drawn = False
    for agent in _top(list(agents), totals):
        points = [
            ((b.low + b.high) / 2, b.approved / b.decided) for b in agents[agent] if b.decided
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker="o", label=_label(agent))
            drawn = True
    if drawn:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
        axes.set_xlim(0, 1)
        axes.set_ylim(-0.02, 1.02)
        axes.set_xlabel("confidence the agent gave (band midpoint)")
        axes.set_ylabel("approved by a person")
        axes.legend(fontsize=8, loc="upper left")
    else:
        _empty(axes, "decided escalation with a confidence")
    axes.set_title("Calibration: confidence vs approval rate, per agent")
    return _svg(figure)


CHARTS = {
    "time-to-decision": time_to_decision,
    "daily-escalations": daily_escalations,
    "decision-shares": decision_shares,
    "calibration": calibration,
}
