"""`pip install sdk/python` into a fresh venv pulls only redis, pydantic and their own
dependencies, and `import escbot_agent` there loads nothing of Slack, SQLAlchemy or
APScheduler. Offline: the wheel is built here and the dependencies are repacked from this
environment into a local wheelhouse (tests/support/wheelhouse.py); pip may use nothing else."""

from __future__ import annotations

import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.wheelhouse import SDK, fresh_install, wheelhouse_for

# What `pip install escbot-agent` installs on Python 3.11.3 and later (redis adds
# async-timeout only before 3.11.3).
EXPECTED = {
    "escbot-agent",
    "redis",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
}
HEAVY = ("slack_bolt", "slack_sdk", "sqlalchemy", "apscheduler", "alembic", "psycopg", "bot")


def test_a_fresh_venv_gets_only_redis_pydantic_and_theirs(tmp_path: Path) -> None:
    house = wheelhouse_for(tmp_path / "wheels", {"escbot-agent": SDK})
    (wheel,) = house.glob("escbot_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = Parser().parsestr(archive.read(meta).decode())
    assert "escbot_agent/py.typed" in names
    assert {"escbot_agent/adapters/langgraph.py", "escbot_agent/mcp_server.py"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("bot", "handlers", "blocks", "migrations")]
    required = [Requirement(text) for text in headers.get_all("Requires-Dist") or []]
    plain = {canonicalize_name(r.name) for r in required if r.marker is None}
    assert plain == {"redis", "pydantic"}  # the extras' frameworks are behind markers

    installed = fresh_install(house, tmp_path / "venv", "escbot-agent")
    assert installed.distributions == EXPECTED

    code = (
        "import sys, escbot_agent, escbot_agent.adapters\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not loaded, loaded\n"
        "print(escbot_agent.TaskGuard.__module__)\n"
    )
    done = subprocess.run(
        [installed.python, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "escbot_agent.guard"
