"""Edited arguments: read from what a person typed, and what the edit changed, in a few
words for people."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from bot.errors import InvalidInput

SHOWN = 120


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per top-level argument that changed: `amount: 740 → 500`,
    `note: added "…"`, `currency: removed`."""
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"{key}: removed")
        elif key not in before:
            lines.append(f"{key}: added {_shown(after[key])}")
        elif before[key] != after[key]:
            lines.append(f"{key}: {_shown(before[key])} → {_shown(after[key])}")
    return lines


def parse_args(text: str) -> dict[str, Any]:
    """Arguments as a person typed them: JSON, and an object."""
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the arguments are not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(args, dict):
        raise InvalidInput(
            f'the arguments must be a JSON object, e.g. {{"amount": 500}}, not {_kind(args)}'
        )
    return args


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "a list" if isinstance(value, list) else "a string"


def check_args(args: object, schema: object) -> dict[str, Any]:
    """Edited arguments: a JSON object, and valid against the action's JSON Schema when
    the escalation carried one (`action.schema`)."""
    if not isinstance(args, dict):
        raise InvalidInput('the arguments must be a JSON object, e.g. {"amount": 500}')
    if isinstance(schema, dict):
        try:
            jsonschema.validate(args, schema)
        except jsonschema.ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path)
            where = f" at `{path}`" if path else ""
            raise InvalidInput(
                f"the arguments break the action's schema{where}: {exc.message}"
            ) from None
        except jsonschema.SchemaError:
            pass  # the agent sent a schema that is not one: nothing to hold the edit against
    return args
