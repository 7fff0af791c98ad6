"""How `escbot` writes its log: plain lines, or with `ESCBOT_LOG_FORMAT=json` one JSON
object a line (CONTRACTS §14: time, level, logger, message, and the escalation, task and
actor ids where a line has them), through python-json-logger. Redaction is a filter on
the handler (`bot.redaction.outgoing.redact_logs`), so both forms are redacted alike,
the ids and other `extra=` fields included.

Ids travel as `extra=log_ids(...)`: `escalation_id`, `task_id`, `actor`."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from bot.core.events import ServiceEvent

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ID_FIELDS = ("escalation_id", "task_id", "actor")

event_log = logging.getLogger("escbot.events")


def log_ids(
    *, escalation_id: str | None = None, task_id: str | None = None, actor: str | None = None
) -> dict[str, str]:
    """The ids a line is about, for `extra=` (only those given)."""
    given = {"escalation_id": escalation_id, "task_id": task_id, "actor": actor}
    return {key: value for key, value in given.items() if value}


class _JsonLines(JsonFormatter):
    """Writes the traceback a filter left in `exc_text` (redacted) rather than formatting
    the exception again from `exc_info`, as the text form does."""

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info and record.exc_text):
            return super().format(record)
        exc_info, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info


def json_formatter() -> logging.Formatter:
    return _JsonLines(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


def configure_logging(
    level: int, log_format: str = "text", stream: Any = None, *, force: bool = False
) -> None:
    """The root logger's one handler, writing `log_format` (`text` or `json`). Like
    `logging.basicConfig`, it leaves a root logger that has handlers already alone
    (a host application's, pytest's) unless `force`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level, handlers=[handler], force=force)


def log_event(event: ServiceEvent) -> None:
    """A service listener: one INFO line per action the service recorded, with its ids."""
    what = event.kind.replace("_", " ")
    subject = " ".join(
        part
        for part in (
            f"escalation {event.escalation_id}" if event.escalation_id else "",
            f"task {event.task_id}" if event.task_id else "",
        )
        if part
    )
    event_log.info(
        "%s%s by %s",
        what,
        f": {subject}" if subject else "",
        event.actor,
        extra=log_ids(escalation_id=event.escalation_id, task_id=event.task_id, actor=event.actor),
    )
