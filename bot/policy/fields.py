"""The small value types of the policy file: durations, Slack ids, tier names, globs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator

Role = Literal["operator", "admin"]
Severity = Literal["low", "medium", "high", "critical"]
Stage = Literal["assist", "narrow", "broad"]
DecideAs = Literal["auto", "approve", "deny"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")

_DURATION = re.compile(r"^\s*([+-]?\d+)\s*([smh])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
MEMBER = re.compile(r"^[UWS][A-Z0-9]{2,}$")
CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_GLOB_ALLOWED = re.compile(r"^[^\[\]]+$")


def parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value)) if isinstance(value, str | int) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 5m or 2h)")
    if int(match.group(1)) <= 0:
        raise ValueError(f"{value!r}: a duration must be positive (use e.g. 90s, 5m or 2h)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def check_members(role: str, value: list[str]) -> list[str]:
    if not value:
        raise ValueError(f"the {role} role is empty: list at least one Slack user or group id")
    for member in value:
        if not MEMBER.match(str(member)):
            raise ValueError(f"{member!r} is not a Slack user id (U…/W…) or user-group id (S…)")
    return value


def check_name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a {what} name (letters, digits, - and _)")
    return value


def check_glob(value: str) -> str:
    """A match value: text with `*` (any run) and `?` (one character) as its wildcards."""
    if not value or not _GLOB_ALLOWED.match(value):
        raise ValueError(
            f"{value!r} is not a pattern: use text with * and ? as wildcards (no [ or ])"
        )
    return value


def glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def check_rate(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{value!r} is not a rate between 0 and 1")
    return value
