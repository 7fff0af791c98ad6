"""`escbot report [--since 7d] [--format text|json|html] [-o FILE]`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import parse_iso, utcnow
from bot.errors import ConfigError
from bot.settings import Settings

_AGO = re.compile(r"^([0-9]{1,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_value(value: str) -> timedelta | datetime:
    """`7d`, `12h`, `2w`, `90m`, or an ISO 8601 time."""
    found = _AGO.match(value.strip())
    if found:
        return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    try:
        return parse_iso(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a span (7d, 12h, 2w, 90m) nor an ISO 8601 time"
        ) from None


def add_report_parser(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="the workflow's figures: rates, times, shares, recovery, cost, calibration"
    )
    report.add_argument(
        "--since",
        type=since_value,
        default=timedelta(days=7),
        help="a span back from now (7d, 12h, 2w) or an ISO 8601 time (default 7d)",
    )
    report.add_argument("--format", choices=("text", "json", "html"), default="text")
    report.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    from bot.control import connect
    from bot.db.store import Store
    from bot.keys import KeyNames
    from bot.report import build_report, read_report_data

    until = utcnow()
    since = until - args.since if isinstance(args.since, timedelta) else args.since
    if since >= until:
        raise ConfigError(f"--since {since.isoformat(timespec='seconds')} is not in the past")
    store = Store.from_url(settings.database_url)
    client = connect(settings.redis_url)
    try:
        store.require_migrated()
        data = read_report_data(store, client, KeyNames(settings.redis_key_prefix), since, until)
    finally:
        store.dispose()
        client.close()
    report = build_report(data)
    if args.format == "json":
        text = json.dumps(report.as_json(), indent=2) + "\n"
    elif args.format == "html":
        from bot.report.html import render_html  # matplotlib only when asked for

        text = render_html(report)
    else:
        from bot.report.text import render_text

        text = render_text(report)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
