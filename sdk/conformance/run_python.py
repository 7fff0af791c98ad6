"""Runs the conformance cases (`cases/*.json`, shaped by `case.schema.json`) against the
Python SDK, `escbot_agent`, on a real Redis.

    python sdk/conformance/run_python.py [--redis-url redis://127.0.0.1:6379/0] [CASE ...]

Each case gets its own key prefix, which is deleted afterwards. An SDK in another language
passes the suite by a runner of its own that reads the same files: set `given`, make the
calls of `steps`, compare with `returns`/`raises` and `expect`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import escbot_agent
import redis
from escbot_agent import PauseTimeout, TaskGuard, TaskKilled
from escbot_agent.refusals import InvalidId

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
SCHEMA = HERE / "case.schema.json"
ANY = "$any"


def load_cases(names: Sequence[str] = ()) -> list[dict[str, Any]]:
    paths = sorted(CASES.glob("*.json"))
    if names:
        paths = [path for path in paths if path.stem in names]
    return [json.loads(path.read_text(encoding="utf-8")) | {"_file": path.stem} for path in paths]


def mismatches(expected: Any, actual: Any, where: str) -> list[str]:
    """How `actual` differs from `expected`, as the schema describes matching."""
    if expected == ANY:
        return [] if actual is not None else [f"{where}: missing"]
    if isinstance(expected, dict) and set(expected) == {"$json"}:
        if not isinstance(actual, str):
            return [f"{where}: expected a JSON string, got {actual!r}"]
        try:
            decoded = json.loads(actual)
        except json.JSONDecodeError:
            return [f"{where}: not JSON: {actual!r}"]
        return mismatches(expected["$json"], decoded, where)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{where}.{key}: missing")
            else:
                found.extend(mismatches(value, actual[key], f"{where}.{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in mismatches(e, a, f"{where}[{i}]")
        ]
    if (
        isinstance(expected, int | float)
        and isinstance(actual, int | float)
        and not isinstance(actual, bool)
    ):
        return [] if float(expected) == float(actual) else [f"{where}: {actual!r} != {expected!r}"]
    return [] if expected == actual else [f"{where}: {actual!r} != {expected!r}"]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = dataclasses.asdict(value)
        if hasattr(value, "approved"):
            data["approved"] = value.approved
        return _plain(data)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _call(
    guard: TaskGuard,
    client: redis.Redis,
    prefix: str,
    case: dict[str, Any],
    op: str,
    args: dict[str, Any],
) -> Any:
    task = case["task"]
    calls: dict[str, Callable[[], Any]] = {
        "checkpoint": lambda: guard.checkpoint(**args),
        "escalate": lambda: guard.escalate(**args),
        "request_approval": lambda: guard.request_approval(**args),
        "say": lambda: guard.say(**args),
        "signal": lambda: guard.signal(**args),
        "finish": lambda: guard.finish(**args),
        "is_killed": lambda: escbot_agent.is_killed(
            client, task["task_id"], prefix=prefix, agent=task.get("agent", "agent")
        ),
    }
    return _plain(calls[op]())


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, TaskKilled):
        return {"error": "killed", "reason": exc.reason, "by": exc.by, "scope": exc.scope}
    if isinstance(exc, PauseTimeout):
        return {"error": "pause_timeout"}
    if isinstance(exc, InvalidId | ValueError):
        return {"error": "invalid"}
    raise exc


def run_case(case: dict[str, Any], client: redis.Redis, prefix: str, redis_url: str) -> list[str]:
    """The case's failures (none: it passes). `client` decodes responses."""
    given = case.get("given", {})
    for key, value in given.get("strings", {}).items():
        client.set(prefix + key, value if isinstance(value, str) else json.dumps(value))
    for stream, entries in given.get("streams", {}).items():
        for fields in entries:
            client.xadd(prefix + stream, fields)
    task = case["task"]
    failures: list[str] = []
    guard: TaskGuard | None = None
    try:
        for number, step in enumerate(case["steps"]):
            where = f"step {number} ({step['op']})"
            try:
                if guard is None:
                    guard = TaskGuard(
                        task["task_id"],
                        url=redis_url,
                        prefix=prefix,
                        agent=task.get("agent", "agent"),
                        task_type=task.get("task_type"),
                        reread_interval=0.1,
                    ).start()
                returned = _call(guard, client, prefix, case, step["op"], step.get("args", {}))
            except BaseException as exc:  # TaskKilled is a BaseException on purpose
                if "raises" not in step:
                    failures.append(f"{where}: raised {exc!r}")
                else:
                    failures.extend(mismatches(step["raises"], _error(exc), where))
                continue
            if "raises" in step:
                failures.append(f"{where}: returned {returned!r}, expected {step['raises']}")
            elif "returns" in step:
                failures.extend(mismatches(step["returns"], returned, where))
    finally:
        if guard is not None:
            guard.close()
    expect = case.get("expect", {})
    for key, value in expect.get("strings", {}).items():
        raw = client.get(prefix + key)
        wanted = value if isinstance(value, str) else {"$json": value}
        failures.extend(mismatches(wanted, raw, f"key {key}"))
    for key in expect.get("absent", []):
        if client.exists(prefix + key):
            failures.append(f"key {key}: should not exist")
    for stream, entries in expect.get("streams", {}).items():
        actual = [fields for _id, fields in client.xrange(prefix + stream) or []]
        failures.extend(mismatches(entries, actual, f"stream {stream}"))
    return failures


def check_schema(case: dict[str, Any]) -> list[str]:
    """The case against case.schema.json (needs `jsonschema`, a test dependency)."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    body = {key: value for key, value in case.items() if key != "_file"}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"schema: {error.message}" for error in validator.iter_errors(body)]


def cleanup(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("cases", nargs="*", help="case names (file names without .json)")
    options = parser.parse_args(argv)
    client = redis.Redis.from_url(options.redis_url, decode_responses=True)
    failed = 0
    for case in load_cases(options.cases):
        prefix = f"escbot-conformance:{uuid.uuid4().hex[:10]}:"
        try:
            failures = run_case(case, client, prefix, options.redis_url)
        finally:
            cleanup(client, prefix)
        failed += bool(failures)
        print(("ok   " if not failures else "FAIL ") + f"{case['_file']}: {case['name']}")
        for failure in failures:
            print(f"       {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
