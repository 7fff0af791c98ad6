"""The last pass over what leaves for people: a Slack message or view, a PagerDuty event,
a log line. What an agent sent is stored redacted already (at intake, with its
escalation's numbering); this pass catches the rest (what people typed, what an agent
says in a thread, an id that turned out to be an email) and numbers new values after the
placeholders the payload already shows, so the two never clash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from bot.redaction.redactor import RedactionRules, Redactor

# The keys of Block Kit, messages and attachments that people read. Ids, button values,
# URLs and a view's private metadata are left alone.
VISIBLE = frozenset(
    {
        "text",
        "alt_text",
        "initial_value",
        "fallback",
        "pretext",
        "footer",
        "title",
        "author_name",
        "placeholder",
        "label",
        "hint",
        "description",
        "summary",
    }
)
# Web API methods whose payload people read.
MESSAGE_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.scheduleMessage",
        "chat.meMessage",
        "views.open",
        "views.update",
        "views.push",
        "views.publish",
    }
)

RulesSource = Callable[[], RedactionRules]


def _visible_texts(value: Any, visible: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        if visible:
            yield value
    elif isinstance(value, list):
        for item in value:
            yield from _visible_texts(item, visible)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _visible_texts(item, key in VISIBLE)


def _redacted(value: Any, redactor: Redactor, visible: bool = False) -> Any:
    if isinstance(value, str):
        return redactor.text(value) if visible else value
    if isinstance(value, list):
        return [_redacted(item, redactor, visible) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, redactor, key in VISIBLE) for key, item in value.items()}
    return value


def redact_message(payload: dict[str, Any], rules: RedactionRules) -> dict[str, Any]:
    """A message or view as Slack takes it (dicts and lists), what people read redacted.
    A `view` or `blocks` given as a JSON string (form-encoded calls) is read as JSON."""
    if not rules.active:
        return payload
    decoded = dict(payload)
    encoded = []
    for key in ("view", "blocks", "attachments"):
        if isinstance(decoded.get(key), str):
            try:
                decoded[key] = json.loads(decoded[key])
                encoded.append(key)
            except ValueError:
                pass
    redactor = Redactor(rules)
    for text in _visible_texts(decoded):
        redactor.reserve(text)
    result: dict[str, Any] = _redacted(decoded, redactor)
    for key in encoded:
        result[key] = json.dumps(result[key], ensure_ascii=False)
    return result


def redact_details(value: Any, rules: RedactionRules) -> Any:
    """Every string of a JSON value (a PagerDuty event's summary and details)."""
    if not rules.active:
        return value
    redactor = Redactor(rules)
    for text in _all_texts(value):
        redactor.reserve(text)
    return redactor.value(value)


def _all_texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _all_texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _all_texts(item)


# The attributes every LogRecord has; anything else on a record came with `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class RedactingFilter(logging.Filter):
    """Log records redacted before any handler writes them: the message as formatted,
    the fields given with `extra=` (a JSON log line writes them out), and the exception
    text. Each line is its own scope."""

    def __init__(self, rules: RulesSource) -> None:
        super().__init__()
        self.rules = rules

    def filter(self, record: logging.LogRecord) -> bool:
        rules = self.rules()
        if not rules.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        redactor = Redactor(rules)
        redactor.reserve(message)
        extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        for value in extras.values():
            for text in _all_texts(value):
                redactor.reserve(text)
        redacted = redactor.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        for key, value in extras.items():
            if isinstance(value, str):
                setattr(record, key, redactor.text(value))
            elif isinstance(value, list | dict):
                setattr(record, key, redactor.value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            redactor.reserve(record.exc_text)
            record.exc_text = redactor.text(record.exc_text)
        return True


def redact_logs(rules: RulesSource) -> None:
    """Every handler of the root logger redacts what it writes (a second call replaces
    the first's filter)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(rules))
