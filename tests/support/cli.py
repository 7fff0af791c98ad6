"""Run the installed `escbot` console script as an operator would."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

ESCBOT = str(Path(sys.executable).with_name("escbot"))
SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "DATABASE_URL",
    "PAGERDUTY_ROUTING_KEY",
    "PAGERDUTY_EVENTS_URL",
    "ESCBOT_POLICY",
    "ESCBOT_SWEEP_INTERVAL",
)


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if k not in SETTINGS} | env

    def __call__(self, *args: str, **env: str) -> Ran:
        done = subprocess.run(
            [ESCBOT, *args],
            cwd=self.cwd,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    def on_terminal(self, *args: str, **env: str) -> Ran:
        """Run with stderr on a pseudo-terminal, as when a person types the command."""
        master, slave = pty.openpty()
        chunks: list[bytes] = []

        def drain() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed and everything was read
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            done = subprocess.run(
                [ESCBOT, *args],
                cwd=self.cwd,
                env=self.env | env,
                stdout=subprocess.PIPE,
                stderr=slave,
                text=True,
                timeout=60,
            )
        finally:
            os.close(slave)
            reader.join(timeout=10)
            os.close(master)
        return Ran(done.returncode, done.stdout, b"".join(chunks).decode(errors="replace"))
