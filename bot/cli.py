"""`escbot`: serve the bot, migrate the store, and break-glass commands that need no Slack.

Exit codes: 0 done; 1 refused or nothing changed; 2 configuration or usage error;
3 recorded in the database but Redis could not be written (it is written later).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any, TextIO

from bot.cli_parser import build_parser
from bot.cli_policy import run_policy
from bot.clock import iso
from bot.control import ControlPlaneError
from bot.core.reconcile import ReconcileReport
from bot.errors import ConfigError, ControlPlaneUnavailable, EscbotError
from bot.keys import ALL
from bot.logs import configure_logging
from bot.policy import UNAVAILABLE_VERSION, Policy, UnavailablePolicy, load_policy
from bot.records import EscalationShown, Overview, TaskStatus
from bot.settings import Settings, load_settings, read_settings
from bot.summaries import (
    PlainStyle,
    overview_sections,
    plain,
    shown_sections,
    status_sections,
)
from bot.verbs import VERBS, Reply, Request, Verb, perform

EXIT_USAGE = 2
EXIT_PENDING = 3
# What needs no database, and what may create one.
_NO_DATABASE = frozenset({"schema", "policy"})
_CREATES_DATABASE = frozenset({"migrate", "serve"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(
        logging.INFO if args.command in ("serve", "sandbox") else logging.WARNING,
        read_settings()[0].log_format,  # a malformed value is named by the command itself
    )
    for noisy in ("alembic", "apscheduler", "slack_bolt", "slack_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings: Settings | None = None
    try:
        if args.command == "serve":  # checks its settings and policy itself, naming all problems
            from bot.serve import serve_from_environment

            return serve_from_environment(
                http=args.http,
                host=args.host,
                port=args.port,
                migrate=not args.no_migrate,
                metrics_port=args.metrics_port,
            )
        if args.command == "sandbox":  # its own settings: nothing to configure
            from bot.sandbox.run import sandbox

            return sandbox(
                port=args.port, demo_agents=args.demo, policy_file=args.policy, host=args.host
            )
        settings = load_settings()
        return _dispatch(settings, args)
    except EscbotError as exc:
        print(f"escbot: {exc.message}", file=sys.stderr)
        if isinstance(exc, ControlPlaneUnavailable):
            print(
                "escbot: the running bot writes it within one sweep of Redis coming back; "
                "without it, run `escbot reconcile` then.",
                file=sys.stderr,
            )
        return exc.exit_code
    except ControlPlaneError as exc:  # reconcile: nothing was written, nothing is lost
        print(
            f"escbot: REDIS_URL: cannot write Redis ({exc}); nothing was changed and nothing "
            "is lost (the database holds every kill and pause): run `escbot reconcile` again "
            "once Redis is back",
            file=sys.stderr,
        )
        return EXIT_PENDING
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `escbot audit export | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # the database or Redis cannot be reached: one line, no traceback
        message = _describe_outage(exc, settings)
        if message is None:
            raise
        print(f"escbot: {message}", file=sys.stderr)
        return EXIT_USAGE


def _describe_outage(exc: Exception, settings: Settings | None) -> str | None:
    from redis import RedisError
    from sqlalchemy.exc import OperationalError

    from bot.db.engine import location

    if isinstance(exc, OperationalError):
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = f" at {location(settings.database_url)}" if settings is not None else ""
        return f"DATABASE_URL: cannot use the database{where}: {detail}"
    if isinstance(exc, RedisError):
        return f"REDIS_URL: cannot use Redis: {exc}"
    return None


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "schema":
        return _schema(args.name, sys.stdout)
    if args.command not in _NO_DATABASE | _CREATES_DATABASE:
        from bot.db.engine import require_existing

        require_existing(settings.database_url)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "policy":
        return run_policy(args, settings.policy_path)
    if args.command == "audit":
        from bot.cli_audit import run_audit

        return run_audit(settings, args)
    if args.command == "report":
        from bot.cli_report import run_report

        return run_report(settings, args)
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
    from bot.db.engine import location, make_engine

    engine = make_engine(settings.database_url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    where = location(settings.database_url)
    if before == after:
        print(f"database {where} already at revision {after}")
    else:
        print(f"database {where} migrated from {before or 'empty'} to {after}")
    return 0


def _policy_for(verb: Verb, settings: Settings) -> tuple[Policy, str | None]:
    """The policy; for a break-glass verb, a stand-in when it cannot be read, and the one
    line of warning to show (the command acts; its audit rows say the policy was
    unavailable, and why)."""
    try:
        return load_policy(settings.policy_path), None
    except ConfigError as exc:
        if not verb.break_glass:
            raise
        stand_in = UnavailablePolicy.because(exc.message)
        return stand_in, (
            f"escbot: warning: acting without the policy ({stand_in.problem}); "
            f"the audit records policy_version {UNAVAILABLE_VERSION} and why"
        )


def _control(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime

    verb = VERBS[args.command]
    policy, warning = _policy_for(verb, settings)
    runtime = build_runtime(settings, policy=policy)
    if warning is not None:  # after the database's checks: a wrong database stops it first
        print(warning, file=sys.stderr)
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
    if isinstance(result, EscalationShown):
        return plain(shown_sections(result, PlainStyle()))
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
