"""`escbot serve` as a process of its own, as an operator would run it: over HTTP, or in
Socket Mode (`http=False`), where the caller says when the bot is ready."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.support.cli import ESCBOT, SETTINGS
from tests.support.redis_server import free_port


class BotProcess:
    def __init__(
        self, env: dict[str, str], workdir: Path, *, port: int | None = None, http: bool = True
    ) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in SETTINGS} | env
        self.http = http
        self.workdir = workdir
        self.port = port or free_port()
        self.log_path = workdir / f"escbot-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def healthy(self) -> bool:
        try:
            return requests.get(self.health_url, timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def start(
        self,
        *,
        args: tuple[str, ...] = (),
        timeout: float = 30.0,
        ready: Callable[[], bool] | None = None,
    ) -> BotProcess:
        """Run `escbot serve` until `ready()` (by default: /healthz answers 200)."""
        front = ("--http", "--host", "127.0.0.1", "--port", str(self.port)) if self.http else ()
        ready = ready or self.healthy
        with self.log_path.open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [ESCBOT, "serve", *front, *args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"escbot serve exited {self.process.returncode}:\n{self.log()}")
            if ready():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"escbot serve did not become ready:\n{self.log()}")

    def stop(self, *, hard: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
