"""The HTML report in headless Chromium: one file that loads with the network refused,
a screenshot that is not blank, and each of the four charts visible and drawn."""

from __future__ import annotations

import re
from pathlib import Path

from bot.report.charts import CHARTS
from bot.report.figures import Report
from bot.report.html import render_html
from tests.support.report_browser import drawn_share, offline_chromium, spread
from tests.test_report import clock, fixture, service  # noqa: F401  (fixtures)


def test_the_html_report_renders_offline_with_every_chart_visible(
    fixture: Report,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(fixture), encoding="utf-8")
    html = path.read_text(encoding="utf-8")
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    with offline_chromium(path) as browser:
        page = browser.page
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        shot = page.screenshot(full_page=True, path=str(tmp_path / "report.png"))
        assert drawn_share(shot) > 0.01 and spread(shot) > 5, "the page looks blank"
        for name in CHARTS:
            chart = page.locator(f"#chart-{name} svg")
            chart.scroll_into_view_if_needed()
            assert chart.is_visible(), name
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150, (name, box)
            picture = chart.screenshot(path=str(tmp_path / f"{name}.png"))
            assert drawn_share(picture) > 0.02, f"chart {name} is blank"
        assert page.locator("table").count() == 4
        assert "billing-agent" in page.inner_text("body")
    assert browser.refused == []  # nothing fetched: readable without a network


def test_charts_with_nothing_to_show_say_so(fixture: Report, tmp_path: Path) -> None:  # noqa: F811
    empty = Report(fixture.since, fixture.until, type(fixture.overall)(2.0), {}, {}, {}, {})
    html = render_html(empty)
    assert html.count("<svg") == len(CHARTS)
    path = tmp_path / "empty.html"
    path.write_text(html, encoding="utf-8")
    with offline_chromium(path) as browser:
        browser.page.goto(path.as_uri())
        for name in CHARTS:
            picture = browser.page.locator(f"#chart-{name} svg").screenshot()
            assert drawn_share(picture) > 0.005, name


def test_names_are_drawn_as_plain_text(fixture: Report) -> None:  # noqa: F811
    odd = "$refund_"
    figures = fixture.by_task_type["refund"]
    daily = {day: {odd: sum(counts.values())} for day, counts in fixture.daily.items()}
    calibration = {"$agent": fixture.calibration["billing-agent"], "_hidden": []}
    renamed = Report(
        fixture.since, fixture.until, fixture.overall, {odd: figures}, {}, calibration, daily
    )
    html = render_html(renamed)  # a lone `$` is no mathematics, and nothing raises
    assert html.count("<svg") == len(CHARTS) and "$refund_" in html
