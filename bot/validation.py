"""Input from outside: pydantic validation errors turned into one line a person can act
on, and untrusted JSON read within bounds (strict numbers, limited nesting)."""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError


def location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def one_line(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:limit]:
        where = location(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required but missing"
        parts.append(f"{where}: {message}" if where else message)
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


MAX_DEPTH = 64


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (the outermost is level 1).
    Walked with a stack, not by recursion, which is what such a value would overflow."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def load_json(raw: str, *, what: str = "payload", max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON (no NaN or Infinity), nested at most `max_depth` levels; else a
    ValueError saying what is wrong, in words for the agent's author."""
    too_deep = f"{what} nested deeper than {max_depth} levels"
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # far deeper than max_depth: the parser gave up first
        raise ValueError(too_deep) from None
    except json.JSONDecodeError as exc:
        message = exc.msg.removesuffix(" at")
        raise ValueError(f"{what} is not valid JSON: {message} at position {exc.pos}") from None
    except ValueError as exc:  # from the hooks above, or an integer of too many digits
        raise ValueError(f"{what} is not valid JSON: {str(exc).split(';')[0]}") from None
    if nested_deeper_than(data, max_depth):
        raise ValueError(too_deep)
    return data
