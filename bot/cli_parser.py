"""The `escbot` command line: its arguments, from the verb table for the verbs."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from bot.cli_policy import add_policy_parser
from bot.cli_report import add_report_parser
from bot.clock import parse_iso
from bot.errors import InvalidId
from bot.ids import check_id
from bot.verbs import Verb, verbs_for

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
EPILOG = (
    "Exit codes: 0 done, 1 refused or nothing changed, 2 configuration or usage error, "
    "3 recorded but not yet written to Redis."
)


def _by(value: str) -> str:
    if not _NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a name (letters, digits, . _ @ -; at most 100)"
        )
    return value


def _since(value: str) -> datetime:
    try:
        return parse_iso(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None


class CliParser(argparse.ArgumentParser):
    """argparse reads an id that starts with `-` (`escbot kill -x`) as an unknown option
    and then says only that the id is missing; this says that the id is invalid, as the
    service does for any other bad id (exit 1, nothing changed)."""

    target_kind: str | None = None  # "task id" or "escalation id", for a verb with a target
    _seen: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]  # typeshed overloads on the namespace type; this keeps the base's behaviour for both
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if self.target_kind is not None and "arguments are required" in message:
            options = {option for action in self._actions for option in action.option_strings}
            for token in self._seen:
                name = token.split("=", 1)[0]
                known = name in options or (
                    name.startswith("--") and any(o.startswith(name) for o in options)
                )
                if token.startswith("-") and token != "--" and not known:
                    try:
                        check_id(token, self.target_kind)
                    except InvalidId as exc:
                        self.exit(1, f"escbot: {exc.message}\n")
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escbot", description="Escalation and override bot for AI agents.", epilog=EPILOG
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CliParser
    )

    serve = sub.add_parser("serve", help="run the bot (Socket Mode with SLACK_APP_TOKEN)")
    serve.add_argument("--http", action="store_true", help="serve Slack's HTTP requests")
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP address (default 0.0.0.0)")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate on start")
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="serve /metrics on this port too (Socket Mode has no other HTTP port)",
    )

    sandbox = sub.add_parser(
        "sandbox", help="try the bot without Slack: a local page that behaves like Slack"
    )
    sandbox.add_argument("--port", type=int, default=3000, help="the page's port (default 3000)")
    sandbox.add_argument("--host", default="127.0.0.1", help="the page's address (127.0.0.1)")
    sandbox.add_argument("--demo", action="store_true", help="start the demo agents")
    sandbox.add_argument("--policy", type=Path, help="a policy file (default: a sample one)")

    sub.add_parser("migrate", help="create the database or bring it to the newest revision")
    schema = sub.add_parser("schema", help="print the JSON Schemas of the contracts")
    schema.add_argument("name", nargs="?", help="one contract (default: all)")

    audit = sub.add_parser("audit", help="check or export the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_sub.add_parser("verify", help="check the hash chain (safe beside a running bot)")
    export = audit_sub.add_parser("export", help="write the audit log out")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", type=_since, help="only rows at or after this ISO 8601 time")
    export.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")

    add_report_parser(sub)

    for verb in verbs_for("cli"):
        _add_verb(sub, verb)
    add_policy_parser(sub)
    return parser


def _add_verb(sub: Any, verb: Verb) -> None:
    """A subcommand from the verb table (bot/verbs.py)."""
    summary = verb.summary + (f" (`all`: {verb.everything})" if verb.everything else "")
    command: CliParser = sub.add_parser(verb.name, help=summary)
    if verb.target != "none":
        kind = {"escalation": "escalation id", "review": "review id"}.get(verb.target, "task id")
        command.target_kind = kind
        command.add_argument(
            "target",
            metavar=verb.target_word.strip("<>").upper(),
            help=f"the {kind}" + (", or all" if verb.target == "task_or_all" else ""),
        )
    for option in verb.options:
        if option.positional:
            command.add_argument(option.name, choices=option.choices or None, help=option.help)
        elif option.flag:
            command.add_argument(f"--{option.name}", action="store_true", help=option.help)
        else:
            command.add_argument(
                f"--{option.name}", default=None, choices=option.choices or None, help=option.help
            )
    if verb.text == "required":
        command.add_argument("text", metavar=verb.text_name.upper(), help=f"the {verb.text_name}")
    elif verb.text == "optional":
        command.add_argument(
            f"--{verb.text_name}",
            dest="text",
            metavar=verb.text_name.upper(),
            default=None,
            help="why (recorded in the audit)",
        )
    if verb.changes:
        command.add_argument("--by", required=True, type=_by, help="your name, for the audit")
    if verb.name in {"status", "list", "show"}:
        command.add_argument("--json", action="store_true", help="machine-readable output")
