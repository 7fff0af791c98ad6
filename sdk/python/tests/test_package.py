"""The package itself: what it imports, what it ships."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import escbot_agent
import pytest
from escbot_agent import cli

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


def test_escbot_agent_mcp_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["mcp"]) == 2
    assert "give --task-id" in capsys.readouterr().err


def test_escbot_agent_mcp_refuses_an_invalid_task_id_in_one_line(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    assert cli.main(["mcp", "--task-id", "all", "--redis-url", redis_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("escbot-agent mcp: invalid task id 'all'") and "Traceback" not in err
