"""Routes compiled for speed: each route's patterns as plain tuples (literals compared as
they are, wildcards as regexes), and the routes that can match a given task type found
without scanning the others. First match wins, as written."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.policy.fields import glob_regex

MATCH_KEYS = ("task_type", "agent", "severity", "action", "kind")
CACHE_LIMIT = 4096  # task types remembered; beyond, unknown ones use the general list


@dataclass(frozen=True)
class Test:
    key: str
    literal: frozenset[str]
    wild: tuple[re.Pattern[str], ...]

    def passes(self, value: str) -> bool:
        return value in self.literal or any(regex.match(value) for regex in self.wild)


@dataclass(frozen=True)
class CompiledRoute:
    index: int
    name: str
    ladder: str
    tests: tuple[Test, ...]

    def matches(self, values: dict[str, str]) -> bool:
        return all(test.passes(values.get(test.key, "")) for test in self.tests)


def compile_test(key: str, patterns: Sequence[str]) -> Test:
    literal = frozenset(p for p in patterns if "*" not in p and "?" not in p)
    wild = tuple(glob_regex(p) for p in patterns if p not in literal)
    return Test(key, literal, wild)


class Router:
    def __init__(self, routes: Sequence[CompiledRoute]) -> None:
        self._general: list[CompiledRoute] = []  # may match any task type
        self._by_type: dict[str, list[CompiledRoute]] = {}
        for route in routes:
            task_type = next((t for t in route.tests if t.key == "task_type"), None)
            if task_type is None or task_type.wild:
                self._general.append(route)
                continue
            for value in task_type.literal:
                self._by_type.setdefault(value, []).append(route)
        self._cache: dict[str, list[CompiledRoute]] = {}

    def _candidates(self, task_type: str) -> list[CompiledRoute]:
        found = self._cache.get(task_type)
        if found is None:
            specific = self._by_type.get(task_type, [])
            found = sorted([*specific, *self._general], key=lambda route: route.index)
            if len(self._cache) < CACHE_LIMIT:
                self._cache[task_type] = found
        return found

    def route(self, values: dict[str, str]) -> CompiledRoute | None:
        for route in self._candidates(values.get("task_type", "")):
            if route.matches(values):
                return route
        return None
