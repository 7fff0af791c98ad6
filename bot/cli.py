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
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.clock import iso, parse_iso
from bot.errors import ConfigError, ControlPlaneUnavailable, EscbotError
from bot.settings import Settings, load_settings

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
    audit_sub.add_parser("verify", help="check the hash chain")
    export = audit_sub.add_parser("export", help="write the audit log out")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", type=_since, help="only rows at or after this ISO 8601 time")
    export.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")

    for verb, text, has_reason in (
        ("kill", "stop a task (or `all`) at its next check", True),
        ("revive", "lift a kill (`all` needs a second admin to confirm)", False),
        ("pause", "make a task wait at its next check", True),
        ("resume", "lift a pause", False),
    ):
        command = sub.add_parser(verb, help=text)
        command.add_argument(
            "task_id", help="the task id" + (", or all" if verb in {"kill", "revive"} else "")
        )
        if has_reason:
            command.add_argument("--reason", default=None, help="why (recorded in the audit)")
        command.add_argument("--by", required=True, type=_by, help="your name, for the audit")

    decide = sub.add_parser("decide", help="decide an escalation (as its card's buttons do)")
    decide.add_argument("escalation_id")
    decide.add_argument("verdict", choices=("approve", "reject", "redirect", "terminate"))
    decide.add_argument("--comment", help="feedback for the agent (reject)")
    decide.add_argument("--instruction", help="what to do instead (required to redirect)")
    decide.add_argument("--by", required=True, type=_by, help="your name, for the audit")
    redirect = sub.add_parser("redirect", help="send a running task a new instruction")
    redirect.add_argument("task_id")
    redirect.add_argument("instruction")
    redirect.add_argument("--by", required=True, type=_by, help="your name, for the audit")

    status = sub.add_parser("status", help="kill/pause state, escalations and audit of a task")
    status.add_argument("task_id")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    listing = sub.add_parser("list", help="open escalations, active kills and pauses")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("reconcile", help="write every active kill and pause back into Redis")
    return parser


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
        return _audit(settings, args)
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


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import audit
    from bot.db.store import Store

    store = Store.from_url(settings.database_url)
    try:
        store.require_migrated()
        with store.transaction() as session:
            if args.audit_command == "verify":
                result = audit.verify(session)
                if not result.ok:
                    print(
                        f"audit chain BROKEN at row {result.first_bad_seq}: {result.problem} "
                        f"({result.checked} rows before it are intact)",
                        file=sys.stderr,
                    )
                    return 1
                print(f"audit chain intact: {result.checked} rows verified")
                return 0
            records = audit.iter_records(session, since=args.since)
            if args.output is None:
                audit.export(records, sys.stdout, args.format)
            else:
                with args.output.open("w", encoding="utf-8", newline="") as out:
                    count = audit.export(records, out, args.format)
                print(f"wrote {count} rows to {args.output}", file=sys.stderr)
            return 0
    finally:
        store.dispose()


def _control(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime

    runtime = build_runtime(settings)
    service = runtime.service
    try:
        command = args.command
        if command in {"status", "list"}:
            view: Any = service.status(args.task_id) if command == "status" else service.overview()
            if args.json:
                print(json.dumps(_jsonable(view), indent=2))
            else:
                render = _render_status if command == "status" else _render_overview
                print(render(view))
            return 0
        if command == "reconcile":
            report = service.reconcile()
            print(
                f"reconciled: {len(report.restored)} key(s) restored, "
                f"{len(report.replayed)} pending change(s) written"
            )
            return 0
        actor = f"cli:{args.by}"
        everything = getattr(args, "task_id", "").lower() == "all"
        actions: dict[str, Callable[[], Any]] = {
            "kill": lambda: (
                service.kill_all(actor, args.reason)
                if everything
                else service.kill(args.task_id, actor, args.reason)
            ),
            "revive": lambda: (
                service.revive_all(actor) if everything else service.revive(args.task_id, actor)
            ),
            "pause": lambda: service.pause(args.task_id, actor, args.reason),
            "resume": lambda: service.resume(args.task_id, actor),
            "decide": lambda: service.decide(
                args.escalation_id,
                actor,
                args.verdict,
                comment=args.comment,
                instruction=args.instruction,
            ),
            "redirect": lambda: service.redirect(args.task_id, actor, args.instruction),
        }
        result = actions[command]()
        print(result.message)
        return 0
    finally:
        runtime.close()


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


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _control_line(label: str, control: Any, idle: str) -> str:
    if control is None:
        return f"  {label:<9} {idle}"
    return (
        f"  {label:<9} ACTIVE since {_when(control.set_at)} by {control.set_by}: {control.reason}"
    )


def _render_status(status: Any) -> str:
    lines = [f"task {status.task_id}"]
    lines.append(_control_line("kill", status.killed, "not killed"))
    lines.append(_control_line("kill all", status.killed_all, "not active"))
    lines.append(_control_line("pause", status.paused, "not paused"))
    lines.append("  escalations:" if status.escalations else "  escalations: none")
    for esc in status.escalations:
        lines.append(
            f"    {esc.id}  {esc.state:<12} {esc.severity:<8} tier {esc.tier:<10} {esc.reason[:60]}"
        )
    lines.append("  recent audit:" if status.recent else "  recent audit: none")
    for record in status.recent:
        lines.append(
            f"    #{record.seq:<6} {_when(record.at)}  {record.actor:<16} {record.action:<11} "
            f"{(record.reason or '')[:60]}"
        )
    return "\n".join(lines)


def _render_overview(overview: Any) -> str:
    lines = [f"open escalations: {len(overview.open_escalations)}"]
    for esc in overview.open_escalations:
        lines.append(
            f"  {esc.id}  {esc.task_id:<24} {esc.state:<12} {esc.severity:<8} "
            f"tier {esc.tier:<10} {esc.reason[:50]}"
        )
    lines.append(f"active kills and pauses: {len(overview.controls)}")
    for control in overview.controls:
        name = "kill:all" if control.target == "all" else f"{control.kind}:{control.target}"
        pending = ""
        if control.revive_requested_by:
            pending = f"  (revive asked by {control.revive_requested_by}, awaiting a second admin)"
        lines.append(
            f"  {name:<32} since {_when(control.set_at)} by {control.set_by}: "
            f"{control.reason[:50]}{pending}"
        )
    if overview.pending_effects:
        lines.append(
            f"changes waiting for Redis: {overview.pending_effects} "
            "(written when Redis is reachable; `escbot reconcile` to retry now)"
        )
    lines.append(f"rejected escalation entries (newest first): {len(overview.rejected)}")
    for entry in overview.rejected:
        lines.append(f"  {entry.stream_id:<20} {_when(entry.received_at)}  {entry.reason[:100]}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
