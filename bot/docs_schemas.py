"""The contracts' JSON Schemas as committed under docs/schemas/: one file per contract,
each exactly what `escbot schema NAME` prints, generated from the models.

    .venv/bin/python -m bot.docs_schemas           # write them
    .venv/bin/python -m bot.docs_schemas --check   # exit 1, naming what is out of date

tests/test_docs.py fails when the committed files and the models differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.contracts import json_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schemas"
COMMAND = ".venv/bin/python -m bot.docs_schemas"


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def expected_files() -> dict[str, str]:
    """File name → content, for every contract."""
    return {f"{name}.json": schema_text(schema) for name, schema in json_schemas().items()}


def problems(directory: Path = SCHEMA_DIR) -> list[str]:
    """What is missing, out of date, or not a contract's under `directory`."""
    expected = expected_files()
    found = {path.name for path in directory.glob("*.json")}
    found_problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.is_file():
            found_problems.append(f"{name} is missing")
        elif path.read_text(encoding="utf-8") != text:
            found_problems.append(f"{name} differs from the model")
    found_problems += [f"{name} belongs to no contract" for name in sorted(found - set(expected))]
    return found_problems


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every contract's schema and remove files of contracts that are gone."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for stale in directory.glob("*.json"):
        if stale.name not in expected:
            stale.unlink()
    written = []
    for name, text in expected.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.docs_schemas", description="Write the contracts' JSON Schemas."
    )
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="default: docs/schemas")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(args.dir)
        for problem in found:
            print(f"{args.dir}: {problem} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if found else 0
    for path in write(args.dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
