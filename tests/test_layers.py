"""The layers of docs/architecture.md hold: what each folder may import, read from the
source (every import, also the ones under TYPE_CHECKING or inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLACK = ("slack_bolt", "slack_sdk", "bot.slack", "handlers", "blocks")

# (files, forbidden imports, why)
RULES = [
    (
        ["bot/core", "bot/db"],
        (*SLACK, "bot.pager", "bot.cli", "bot.serve"),
        "the domain never imports Slack (or what drives it)",
    ),
    (
        [
            "sdk/python/escbot_agent/contracts.py",
            "bot/records.py",
            "bot/verbs.py",
            "bot/summaries.py",
            "bot/policy",
            "bot/authz.py",
            "bot/control.py",
            "sdk/python/escbot_agent/keys.py",
            "sdk/python/escbot_agent/ids.py",
            "bot/intake.py",
            "bot/streams.py",
        ],
        SLACK,
        "below the Slack side: no Slack import",
    ),
    (
        ["sdk/python/escbot_agent"],
        ("bot", "handlers", "blocks", "migrations", "sqlalchemy", "apscheduler", *SLACK),
        "the agent SDK (escbot_agent) imports nothing of the bot",
    ),
    (["bot/db"], ("bot.core",), "the store is below the service: it never calls it"),
    (
        ["bot/policy"],
        ("redis", "sqlalchemy", "bot.db", "bot.core", "bot.control"),
        "the policy is pure: it reads its own file, nothing else",
    ),
    (
        [
            "sdk/python/escbot_agent/contracts.py",
            "sdk/python/escbot_agent/ids.py",
            "sdk/python/escbot_agent/keys.py",
            "bot/records.py",
            "bot/summaries.py",
        ],
        ("redis", "sqlalchemy", "bot.db", "bot.core", "bot.control"),
        "contracts and records do no I/O",
    ),
    (
        ["blocks"],
        (
            "slack_bolt",
            "slack_sdk.web",
            "slack_sdk.errors",
            "redis",
            "sqlalchemy",
            "bot.db",
            "bot.core",
            "bot.control",
            "bot.clock",
            "bot.slack",
            "handlers",
        ),
        "blocks are pure: no I/O, no clock (they take `now`)",
    ),
    (
        ["handlers"],
        (
            "sqlalchemy",
            "redis",
            "bot.db",
            "bot.control",
            "bot.slack.worker",
            "bot.slack.agent_events",
            "bot.slack.app",
            "bot.slack.http",
        ),
        "listeners reach the store and Redis only through the service",
    ),
]


def _files(where: str) -> list[Path]:
    path = ROOT / where
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _hits(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in forbidden)


@pytest.mark.parametrize("places, forbidden, why", RULES, ids=[rule[2] for rule in RULES])
def test_layer(places: list[str], forbidden: tuple[str, ...], why: str) -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for place in places
        for path in _files(place)
        for name in sorted(_imports(path))
        if _hits(name, forbidden)
    ]
    assert not found, f"{why}: " + "; ".join(found)
