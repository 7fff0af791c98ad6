"""Conditions (`when`) in Google's Common Expression Language, compiled once per policy
version with the `common-expression-language` package (the Rust `cel` interpreter): never
Python's `eval`. A condition reads only the request: `args`, `action`, `agent`,
`task_type`, `severity`, `confidence` (null when not sent)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

VARIABLES = ("args", "action", "agent", "task_type", "severity", "confidence")


class ConditionFailed(Exception):
    """A condition could not be evaluated for one request (a missing field, a wrong
    type, a result that is not true or false): that request goes to a person."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("|")]
    return (lines[0] if lines else text)[:300]


@dataclass(frozen=True)
class Condition:
    source: str
    program: Any = field(compare=False, repr=False)
    variables: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def compile(cls, source: str) -> Condition:
        """Raises ValueError saying why it does not compile (or names what it may not read)."""
        text = source.strip()
        if not text:
            raise ValueError("is empty")
        try:
            program = cel.compile(text)
        except (ValueError, RuntimeError) as exc:
            message = _first_line(exc).removeprefix(f"Failed to parse expression '{text}': ")
            raise ValueError(f"does not compile: {message}") from None
        names = tuple(program.variables())
        unknown = sorted(set(names) - set(VARIABLES))
        if unknown:
            raise ValueError(
                f"reads {', '.join(unknown)}: a condition may read only {', '.join(VARIABLES)}"
            )
        return cls(text, program, names)

    def holds(self, request: Mapping[str, Any]) -> bool:
        """True or False for this request; ConditionFailed when it cannot say."""
        # Only the variables the expression reads are handed over: converting the rest
        # into CEL values would cost more than evaluating.
        variables = {name: request.get(name) for name in self.variables}
        try:
            result = self.program.execute(variables)
        except KeyError as exc:
            raise ConditionFailed(f"the request has no field {exc.args[0]!r}") from None
        except Exception as exc:
            raise ConditionFailed(_first_line(exc)) from None
        if not isinstance(result, bool):
            raise ConditionFailed(f"gave {result!r}, not true or false")
        return result
