"""The policy's `redaction:` section (CONTRACTS §12): which detectors run, your own named
patterns, the paths never redacted, and whether the raw escalation is kept."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from bot.redaction import DETECTORS, RedactionRules

DetectorName = Literal["email", "phone", "card", "iban", "secret", "ip"]
ALL_DETECTORS: tuple[DetectorName, ...] = ("email", "phone", "card", "iban", "secret", "ip")
_PATTERN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PATH = re.compile(r"^(reason|action|context)(\.[A-Za-z0-9_-]+)*$")


class Redaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    detectors: list[DetectorName] = Field(default_factory=lambda: list(ALL_DETECTORS))
    patterns: dict[str, str] = Field(default_factory=dict)
    keep: list[str] = Field(default_factory=list)
    store_raw: bool = False
    _rules: RedactionRules | None = PrivateAttr(default=None)

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            if not _PATTERN_NAME.match(name):
                raise ValueError(
                    f"{name!r}: a pattern's name is its placeholder's ([{name}-1]): lower-case "
                    "letters, digits and _, starting with a letter"
                )
            if name in DETECTORS:
                raise ValueError(f"{name!r} is a built-in detector: name your pattern otherwise")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns.{name}: not a regular expression: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"patterns.{name}: matches the empty text")
        return patterns

    @field_validator("keep")
    @classmethod
    def _paths(cls, keep: list[str]) -> list[str]:
        for path in keep:
            if not _PATH.match(path):
                raise ValueError(
                    f"keep: {path!r} is not a dotted path into an escalation "
                    "(reason, action.args.<key>, context.<key>…)"
                )
        return keep

    @property
    def rules(self) -> RedactionRules:
        """Compiled once per policy."""
        if self._rules is None:
            self._rules = RedactionRules.build(
                self.detectors,
                {name: re.compile(pattern) for name, pattern in self.patterns.items()},
                self.keep,
                self.store_raw,
            )
        return self._rules


DEFAULT_RULES = Redaction().rules


def rules_source(policies: Any) -> Callable[[], RedactionRules]:
    """The rules of the policy in force at each call (a reload takes effect at once): a
    plain function, so that copies of the clients holding it share the holder. Every
    detector while no policy is readable."""

    def current() -> RedactionRules:
        redaction = getattr(policies.current, "redaction", None)
        return redaction.rules if isinstance(redaction, Redaction) else DEFAULT_RULES

    return current
