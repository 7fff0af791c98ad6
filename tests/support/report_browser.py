"""Debian's Chromium, headless, driven by Playwright (no browser download:
`executable_path`), for opening the HTML report; every request but the file itself is
refused and recorded, so a test can prove the page needs no network."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"


@dataclass
class OfflinePage:
    page: Page
    refused: list[str] = field(default_factory=list)


@contextlib.contextmanager
def offline_chromium(allowed: Path) -> Iterator[OfflinePage]:
    """A headless page that may load `allowed` (a file) and nothing else."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/services does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            offline = OfflinePage(page)

            def guard(route: Route) -> None:
                if route.request.url == allowed.as_uri():
                    route.continue_()
                else:
                    offline.refused.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            yield offline
        finally:
            browser.close()


def drawn_share(png: bytes) -> float:
    """The share of pixels that are not (nearly) white: 0 for a blank image."""
    image = Image.open(io.BytesIO(png)).convert("L")
    inked = sum(count for level, count in enumerate(image.histogram()) if level < 235)
    return inked / (image.width * image.height)


def spread(png: bytes) -> float:
    """The standard deviation of grey levels: near 0 for a one-colour image."""
    return float(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).stddev[0])
