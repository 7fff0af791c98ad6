"""`escbot`: serve the bot, migrate the store, and break-glass commands that need no Slack.

Exit codes: 0 done; 1 refused or nothing changed; 2 configuration or usage error;
3 recorded in the database but Redis could not be written (it is written later).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.clock import iso, parse_iso
from bot.core.reconcile import ReconcileReport
from bot.errors import ConfigError, ControlPlaneUnavailable, EscbotError
from bot.keys import ALL
from bot.records import Overview, TaskStatus
from bot.settings import Settings, load_settings
from bot.summaries import PlainStyle, overview_sections, plain, status_sections
from bot.verbs import VERBS, Reply, Request, Verb, perform, verbs_for

EXIT_USAGE = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escbot",
        description="Escalation and override bot for AI agents.",
        epilog="Exit codes: 0 done, 1 refused or nothing changed, 2 configuration or usage "
        "error, 3 recorded but not yet written to Redis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the bot (Socket Mode with SLACK_APP_TOKEN)")
    serve.add_argument("--http", action="store_true", help="serve Slack's HTTP requests")
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP address (default 0.0.0.0)")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate on start")

    sub.add_parser("migrate", help="bring the database to the newest revision")
    schema = sub.add_parser("schema", help="print the JSON Schemas of the contracts")
    schema.add_argument("name", nargs="?", help="one contract (default: all)")

    audit = sub.add_parser("audit", help="check or export the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_sub.add_parser("verify", help="check the hash chain (safe beside a running bot)")
    export = audit_sub.add_parser("export", help="write the audit log out")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", type=_since, help="only rows at or after this ISO 8601 time")
    export.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")

    for verb in verbs_for("cli"):
        _add_verb(sub, verb)
    return parser


def _add_verb(sub: Any, verb: Verb) -> None:
    """A subcommand from the verb table (bot/verbs.py)."""
    summary = verb.summary + (f" (`all`: {verb.everything})" if verb.everything else "")
    command = sub.add_parser(verb.name, help=summary)
    if verb.target != "none":
        what = {"escalation": "the escalation id"}.get(verb.target, "the task id")
        command.add_argument(
            "target",
            metavar=verb.target_word.strip("<>").upper(),
            help=what + (", or all" if verb.target == "task_or_all" else ""),
        )
    for option in verb.options:
        if option.positional:
            command.add_argument(option.name, choices=option.choices or None, help=option.help)
        else:
            command.add_argument(f"--{option.name}", default=None, help=option.help)
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
    elif verb.name in {"status", "list"}:
        command.add_argument("--json", action="store_true", help="machine-readable output")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "apscheduler", "slack_bolt", "slack_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return _dispatch(args)
    except EscbotError as exc:
        print(f"escbot: {exc.message}", file=sys.stderr)
        if isinstance(exc, ControlPlaneUnavailable):
            print(
                "escbot: the running bot writes it within one sweep of Redis coming back; "
                "without it, run `escbot reconcile` then.",
                file=sys.stderr,
            )
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `escbot audit export | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # the database or Redis cannot be reached: one line, no traceback
        message = _describe_outage(exc)
        if message is None:
            raise
        print(f"escbot: {message}", file=sys.stderr)
        return EXIT_USAGE


def _describe_outage(exc: Exception) -> str | None:
    from redis import RedisError
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"DATABASE_URL: cannot use the database: {detail}"
    if isinstance(exc, RedisError):
        return f"REDIS_URL: cannot use Redis: {exc}"
    return None


def _dispatch(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.command == "schema":
        return _schema(args.name, sys.stdout)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "serve":
        from bot.serve import serve

        return serve(
            settings, http=args.http, host=args.host, port=args.port, migrate=not args.no_migrate
        )
    if args.command == "audit":
        from bot.cli_audit import run_audit

        return run_audit(settings, args)
    return _control(settings, args)


def _schema(name: str | None, out: TextIO) -> int:
    from bot.contracts import json_schemas

    schemas = json_schemas()
    if name is not None:
        if name not in schemas:
            raise ConfigError(f"unknown contract {name!r} (choose from {', '.join(schemas)})")
        json.dump(schemas[name], out, indent=2)
    else:
        json.dump(schemas, out, indent=2)
    out.write("\n")
    return 0


def _migrate(settings: Settings) -> int:
    from bot.db import migrate
    from bot.db.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"database already at revision {after}")
    else:
        print(f"database migrated from {before or 'empty'} to {after}")
    return 0


def _control(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime

    verb = VERBS[args.command]
    runtime = build_runtime(settings)
    try:
        target = getattr(args, "target", None)
        if verb.target == "task_or_all" and target is not None and target.lower() == ALL:
            target = ALL
        request = Request(
            verb=verb.name,
            actor=f"cli:{args.by}" if verb.changes else "cli",
            target=target,
            text=getattr(args, "text", None),
            options={option.name: getattr(args, option.name) for option in verb.options},
        )
        result = perform(runtime.service, request)
        if getattr(args, "json", False):
            print(json.dumps(_jsonable(result), indent=2))
        else:
            print(_render(result))
        return 0
    finally:
        runtime.close()


def _render(result: Reply) -> str:
    if isinstance(result, TaskStatus):
        return plain(status_sections(result, PlainStyle()))
    if isinstance(result, Overview):
        return plain(overview_sections(result, PlainStyle()))
    if isinstance(result, ReconcileReport):
        return (
            f"reconciled: {len(result.restored)} key(s) restored, "
            f"{len(result.replayed)} pending change(s) written"
        )
    return result.message


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return iso(value)
    return value


if __name__ == "__main__":
    raise SystemExit(main())
