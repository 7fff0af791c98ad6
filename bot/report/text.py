"""`escbot report --format text`: aligned tables, everything first, then each task type
and each agent; the calibration per agent last."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.report.figures import Band, Figures, Report, percentile


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for i, row in enumerate([header, *rows]):
        cells = [
            str(cell).ljust(width) if n == 0 else str(cell).rjust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def groups(report: Report) -> list[tuple[str, Figures]]:
    named = [("all", report.overall)]
    named += [(f"type {name}", f) for name, f in sorted(report.by_task_type.items())]
    named += [(f"agent {name}", f) for name, f in sorted(report.by_agent.items())]
    return named


def volume_rows(report: Report) -> list[list[str]]:
    rows = []
    for name, f in groups(report):
        rows.append(
            [
                name,
                str(f.escalations),
                number(f.escalations / f.days if f.days else None, 1),
                duration(percentile(f.ack, 0.5)),
                duration(percentile(f.ack, 0.9)),
                duration(percentile(f.decision, 0.5)),
                duration(percentile(f.decision, 0.9)),
            ]
        )
    return rows


def decision_rows(report: Report) -> list[list[str]]:
    rows = []
    for name, f in groups(report):
        decided = f.decided
        rows.append(
            [name, str(decided)]
            + [share(n / decided if decided else None) for n in f.outcomes.values()]
            + [share(f.policy_decided / decided if decided else None)]
        )
    return rows


def care_rows(report: Report) -> list[list[str]]:
    rows = []
    for name, f in groups(report):
        ended = f.resumed + f.abandoned
        rows.append(
            [
                name,
                str(f.paused),
                str(f.resumed),
                str(f.abandoned),
                share(f.resumed / ended if ended else None),
                str(f.reviewed),
                share(f.flagged / f.reviewed if f.reviewed else None),
                str(f.completed),
                number(f.cost / f.completed if f.completed else None),
            ]
        )
    return rows


def calibration_rows(calibration: dict[str, list[Band]]) -> list[list[str]]:
    rows = []
    for agent, bands in sorted(calibration.items(), key=lambda item: (item[0] != "all", item[0])):
        for band in bands:
            if band.decided:
                rate = band.approved / band.decided
                rows.append([agent, band.label, str(band.decided), str(band.approved), share(rate)])
    return rows


Rows = Callable[[Report], list[list[str]]]
SECTIONS: list[tuple[str, list[str], Rows]] = [
    (
        "Escalations and how fast people answered",
        ["", "escalations", "per day", "ack p50", "ack p90", "decide p50", "decide p90"],
        volume_rows,
    ),
    (
        "Decisions (shares of those decided)",
        ["", "decided", "approved", "edited", "rejected", "terminated", "redirected", "expired",
         "by policy"],
        decision_rows,
    ),
    (
        "Recovery, reviews and cost",
        ["", "paused", "resumed", "abandoned", "recovery", "reviewed", "flagged", "completed",
         "cost/task"],
        care_rows,
    ),
    (
        "Confidence calibration (escalations a person decided)",
        ["agent", "confidence", "decided", "approved", "approval rate"],
        lambda report: calibration_rows(report.calibration),
    ),
]  # fmt: skip


def render_text(report: Report) -> str:
    lines = [
        f"escbot report: {report.since.isoformat(timespec='seconds')} to "
        f"{report.until.isoformat(timespec='seconds')} ({report.days:.1f} days)",
    ]
    for title, header, rows_of in SECTIONS:
        rows = rows_of(report)
        lines += ["", title, *(table(header, rows) if rows else ["nothing in this window"])]
    return "\n".join(lines) + "\n"
