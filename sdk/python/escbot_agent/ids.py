"""Identifiers: task and escalation ids as the control plane accepts them."""

from __future__ import annotations

import os
import re
import time

from escbot_agent.refusals import InvalidId

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_ID_RE = re.compile(ID_PATTERN)
RESERVED_TASK_IDS = frozenset({"all"})
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def check_id(value: object, what: str = "task id") -> str:
    """Return ``value`` if it is a valid id, else raise :class:`InvalidId` saying why."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        if isinstance(value, str) and len(value) > 128:
            why = f"is {len(value)} characters long (at most 128)"
        elif isinstance(value, str) and not value:
            why = "is empty"
        else:
            why = "must start with a letter or digit and contain only letters, digits, . _ : -"
        raise InvalidId(f"invalid {what} {_describe(value)}: {why}")
    return value


AGENT_PREFIX = "agent:"


def check_task_id(value: object) -> str:
    task_id = check_id(value, "task id")
    if task_id.lower() in RESERVED_TASK_IDS:
        raise InvalidId(f"invalid task id {task_id!r}: 'all' is reserved (use `kill all`)")
    if task_id.lower().startswith(AGENT_PREFIX):
        raise InvalidId(
            f"invalid task id {_describe(task_id)}: ids beginning with 'agent:' are reserved "
            "for agent-wide stops"
        )
    return task_id


def check_agent_name(value: object) -> str:
    """An agent's name as agent-wide keys use it (`kill:agent:{agent}`)."""
    return check_id(value, "agent name")


def agent_target(agent: str) -> str:
    """The control target of an agent-wide stop: `agent:{agent}`."""
    return AGENT_PREFIX + check_agent_name(agent)


def check_target(value: object) -> str:
    """A task id, or `agent:<name>` for every task of that agent."""
    if isinstance(value, str) and value.lower().startswith(AGENT_PREFIX):
        return agent_target(value[len(AGENT_PREFIX) :])
    return check_task_id(value)


def is_agent_target(target: str) -> bool:
    return target.startswith(AGENT_PREFIX)


def check_escalation_id(value: object) -> str:
    return check_id(value, "escalation id")


def new_escalation_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32, sortable."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
