"""Run the installed `escbot` console script as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
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
