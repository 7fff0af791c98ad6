"""Placeholders for what the detectors find (CONTRACTS §12): `[email-1]`, `[phone-2]`,
`[order-1]`. A `Redactor` numbers the values of one scope (an escalation, a message):
within it the same value is always the same placeholder, and what it replaced can be put
back (`restore`) for the agent, whose own data must come back to it unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.redaction.detectors import BUILT_IN, SECRET_KEY, Detector, Finding, pattern_detector

PLACEHOLDER = re.compile(r"\[([a-z][a-z0-9_]{0,31})-([1-9]\d{0,5})\]")
# Slack's own markup (mentions, channels, dates: `<@U…>`, `<#C…>`, `<!date^…|…>`) is
# never read as data.
_SLACK_TOKEN = re.compile(r"<[@#!][^<>]*>")
CACHED_TEXTS = 8192  # a card drawn again repeats most of its texts


@dataclass(frozen=True)
class RedactionRules:
    """The detectors in force, in order of precedence where two findings overlap, and
    the dotted paths never redacted."""

    detectors: tuple[tuple[str, Detector], ...]
    keep: frozenset[str] = frozenset()
    store_raw: bool = False
    kinds: frozenset[str] = field(default=frozenset())
    _cached: Callable[[str], tuple[Finding, ...]] | None = field(
        default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        cached = functools.lru_cache(maxsize=CACHED_TEXTS)(lambda text: tuple(_find(self, text)))
        object.__setattr__(self, "_cached", cached)

    def findings(self, text: str) -> tuple[Finding, ...]:
        """What `text` holds (see `findings`), remembered for the texts seen last."""
        assert self._cached is not None
        return self._cached(text)

    @classmethod
    def build(
        cls,
        detectors: Iterable[str],
        patterns: Mapping[str, re.Pattern[str]] | None = None,
        keep: Iterable[str] = (),
        store_raw: bool = False,
    ) -> RedactionRules:
        chosen = set(detectors)
        found: list[tuple[str, Detector]] = []
        if "secret" in chosen:
            found.append(("secret", BUILT_IN["secret"]))
        found += [(name, pattern_detector(name, p)) for name, p in (patterns or {}).items()]
        found += [
            (name, BUILT_IN[name]) for name in BUILT_IN if name in chosen and name != "secret"
        ]
        return cls(
            detectors=tuple(found),
            keep=frozenset(keep),
            store_raw=store_raw,
            kinds=frozenset(name for name, _ in found),
        )

    @property
    def active(self) -> bool:
        return bool(self.detectors)

    def keeps(self, path: str) -> bool:
        return any(path == kept or path.startswith(kept + ".") for kept in self.keep)


def findings(rules: RedactionRules, text: str) -> tuple[Finding, ...]:
    return rules.findings(text)


def _find(rules: RedactionRules, text: str) -> list[Finding]:
    """Non-overlapping findings, left to right; where two overlap the one that starts
    first wins, then the longer, then the detector that comes first."""
    protected = [m.span() for m in _SLACK_TOKEN.finditer(text)] if "<" in text else []
    protected += [m.span() for m in PLACEHOLDER.finditer(text)] if "[" in text else []
    found: list[tuple[int, int, int, Finding]] = []
    for rank, (_name, detect) in enumerate(rules.detectors):
        for finding in detect(text):
            if not any(finding.start < end and start < finding.end for start, end in protected):
                found.append((finding.start, -finding.end, rank, finding))
    chosen: list[Finding] = []
    reached = 0
    for _start, _end, _rank, finding in sorted(found, key=lambda item: item[:3]):
        if finding.start >= reached:
            chosen.append(finding)
            reached = finding.end
    return chosen


class Redactor:
    """One scope's placeholders. `known`: placeholder → original value, from earlier in
    the scope (an escalation's map); numbering goes on after the highest number seen."""

    def __init__(self, rules: RedactionRules, known: Mapping[str, str] | None = None) -> None:
        self.rules = rules
        self.originals: dict[str, str] = dict(known or {})
        self.added: dict[str, str] = {}
        self._placeholder_of: dict[tuple[str, str], str] = {}
        self._last: dict[str, int] = {}
        for placeholder, original in self.originals.items():
            match = PLACEHOLDER.fullmatch(placeholder)
            if match:
                kind = match.group(1)
                for value in (original, *self._values_of(kind, original)):
                    self._placeholder_of.setdefault((kind, value), placeholder)
                self._note(match)

    def _values_of(self, kind: str, original: str) -> list[str]:
        """What the detectors make of a known original (a phone number's canonical form,
        a card number without its spaces): the same value written again, in any form,
        gets the same placeholder."""
        return [f.value for f in self.rules.findings(original) if f.kind == kind]

    def reserve(self, text: str) -> None:
        """Placeholders already in `text` (redacted earlier) keep their numbers: new values
        are numbered after them."""
        for match in PLACEHOLDER.finditer(text):
            self._note(match)

    def _note(self, match: re.Match[str]) -> None:
        kind, number = match.group(1), int(match.group(2))
        self._last[kind] = max(self._last.get(kind, 0), number)

    def placeholder(self, kind: str, value: str, original: str) -> str:
        key = (kind, value)
        found = self._placeholder_of.get(key)
        if found is None:
            number = self._last.get(kind, 0) + 1
            self._last[kind] = number
            found = f"[{kind}-{number}]"
            self._placeholder_of[key] = found
            self.originals[found] = original
            self.added[found] = original
        return found

    def text(self, text: str) -> str:
        if not self.rules.active or not text:
            return text
        parts: list[str] = []
        at = 0
        for finding in self.rules.findings(text):
            parts.append(text[at : finding.start])
            original = text[finding.start : finding.end]
            parts.append(self.placeholder(finding.kind, finding.value, original))
            at = finding.end
        if not parts:
            return text
        parts.append(text[at:])
        return "".join(parts)

    def value(self, value: Any, path: str = "") -> Any:
        """Every string in a JSON value, except under the rules' `keep` paths (dotted keys;
        list items share their list's path). A string under a key named like a secret
        (`password`, `api_key`, `token`…) is a secret whatever it looks like."""
        if path and self.rules.keeps(path):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item, path) for item in value]
        if isinstance(value, dict):
            result = {}
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                if (
                    isinstance(item, str)
                    and item
                    and "secret" in self.rules.kinds
                    and SECRET_KEY.match(str(key))
                    and not self.rules.keeps(inner)
                    and not PLACEHOLDER.fullmatch(item)
                ):
                    result[key] = self.placeholder("secret", item, item)
                else:
                    result[key] = self.value(item, inner)
            return result
        return value


class UnknownPlaceholders(ValueError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing


def restore(value: Any, originals: Mapping[str, str], kinds: Iterable[str]) -> Any:
    """Placeholders (of these kinds) put back to what they replaced. UnknownPlaceholders
    when one was never issued in this scope (typed by hand, or its map is gone)."""
    missing: list[str] = []
    counted = frozenset(kinds)

    def text(item: str) -> str:
        def back(match: re.Match[str]) -> str:
            original = originals.get(match.group())
            if original is None:
                if match.group(1) not in counted:
                    return match.group()
                missing.append(match.group())
                return match.group()
            return original

        return PLACEHOLDER.sub(back, item) if "[" in item else item

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        return item

    restored = walk(value)
    if missing:
        raise UnknownPlaceholders(sorted(set(missing)))
    return restored
