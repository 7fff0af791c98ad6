"""`escbot report --format html`: one self-contained file (inline CSS, charts as inline
SVG, no script, no link out), readable offline and safe to attach to a ticket."""

from __future__ import annotations

from html import escape

from bot.report.charts import CHARTS
from bot.report.figures import Report
from bot.report.text import SECTIONS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 70rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(32rem, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid #e3e3e3; padding: 0.5rem; }
figure svg { width: 100%; height: auto; }
"""


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    since = report.since.isoformat(timespec="seconds")
    until = report.until.isoformat(timespec="seconds")
    charts = "".join(
        f'<figure class="chart" id="chart-{name}">{draw(report)}</figure>'
        for name, draw in CHARTS.items()
    )
    tables = "".join(
        f"<h2>{escape(title)}</h2>{_table(header, rows_of(report))}"
        for title, header, rows_of in SECTIONS
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>escbot report {escape(since)} to {escape(until)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>escbot report</h1><p>{escape(since)} to {escape(until)} "
        f"({report.days:.1f} days)</p>"
        f'<div class="charts">{charts}</div>{tables}</body></html>\n'
    )
