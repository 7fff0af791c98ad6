"""The Python SDK passes the language-neutral conformance suite (sdk/conformance/)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

RUNNER = Path(__file__).resolve().parents[2] / "conformance" / "run_python.py"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("escbot_conformance", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


conformance = _runner()
CASES: list[dict[str, Any]] = conformance.load_cases()


def test_there_are_cases_and_each_follows_the_schema() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert conformance.check_schema(case) == [], case["_file"]


@pytest.mark.parametrize("case", CASES, ids=[case["_file"] for case in CASES])
def test_the_sdk_passes(
    case: dict[str, Any], client: redis.Redis, prefix: str, redis_url: str
) -> None:
    assert conformance.run_case(case, client, prefix, redis_url) == []


def test_a_case_the_sdk_does_not_meet_fails_with_where_and_why(
    client: redis.Redis, prefix: str, redis_url: str
) -> None:
    case = copy.deepcopy(next(c for c in CASES if c["_file"] == "signal"))
    case["expect"]["streams"]["agent-signals"][0]["value"] = "0.75"
    case["steps"].append({"op": "checkpoint", "raises": {"error": "killed"}})
    failures = conformance.run_case(case, client, prefix, redis_url)
    assert failures == [
        "step 1 (checkpoint): returned [], expected {'error': 'killed'}",
        "stream agent-signals[0].value: '0.5' != '0.75'",
    ]
