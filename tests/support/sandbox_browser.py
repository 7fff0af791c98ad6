"""`escbot sandbox --demo` as a process of its own, and Debian's Chromium driven by
Playwright (no browser download: `executable_path`), for the sandbox's browser test.
Screenshots go to `test-artifacts/sandbox/` (git-ignored)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.support.cli import ESCBOT, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "sandbox"
CHROMIUM = "/usr/bin/chromium"
READY = re.compile(r"escbot sandbox: open (http://\S+)")


class SandboxProcess:
    def __init__(self, redis_url: str, workdir: Path) -> None:
        # Run where no `.env` is, with none of the bot's settings but Redis.
        self.env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
        self.env["REDIS_URL"] = redis_url
        self.workdir = workdir
        self.log_path = workdir / "sandbox.log"
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> SandboxProcess:
        self.process = subprocess.Popen(
            [ESCBOT, "sandbox", "--demo", "--port", "0"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._copy, args=(self.process.stdout, lines), daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=timeout)
                found = READY.search(line)
                if found:
                    self.url = found.group(1)
                    return self
        except queue.Empty:
            self.stop()
            raise AssertionError(f"the sandbox did not start: {self.log()}") from None

    def _copy(self, stream: IO[str], lines: queue.Queue[str]) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                lines.put(line)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


@pytest.fixture
def sandbox(redis_url: str, tmp_path: Path) -> Iterator[SandboxProcess]:
    running = SandboxProcess(redis_url, tmp_path).start()
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def chromium() -> Iterator[Page]:
    """A headless Chromium page (1400 by 900), closed afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/services does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield page
        finally:
            browser.close()


@pytest.fixture
def browser_page() -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as page:
        yield page
