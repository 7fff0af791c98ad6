"""The package itself: what it imports, what it ships."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import escbot_agent

PACKAGE = Path(escbot_agent.__file__).parent
HEAVY = ("sqlalchemy", "slack_sdk", "slack_bolt", "apscheduler", "pagerduty", "alembic", "bot")


def test_it_imports_nothing_of_the_bot_or_slack() -> None:
    code = (
        "import escbot_agent, sys; "
        f"heavy = {HEAVY!r}; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy); "
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_it_ships_type_information() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_the_public_names_are_there() -> None:
    for name in escbot_agent.__all__:
        assert getattr(escbot_agent, name) is not None
