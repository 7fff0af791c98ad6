"""`ESCBOT_LOG_FORMAT=json`: one JSON object a line with the ids, redacted like the text
form, the fields given with `extra=` included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.core.events import ServiceEvent
from bot.logs import configure_logging, log_event, log_ids
from bot.policy.redaction import Redaction
from bot.redaction.outgoing import redact_logs


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging(logging.INFO, "json", out, force=True)
    redact_logs(lambda: Redaction().rules)
    yield out
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in before:
        root.addHandler(handler)
    root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_line_is_an_object_with_the_ids(written: io.StringIO) -> None:
    log_event(ServiceEvent("acknowledged", "U012AB3CD", "refund-4711", "01JDESC"))
    logging.getLogger("bot.pager").warning("no ids here: %d", 3)
    [event, plain] = lines(written)
    assert event["level"] == "INFO" and event["logger"] == "escbot.events"
    assert event["message"] == "acknowledged: escalation 01JDESC task refund-4711 by U012AB3CD"
    assert (event["escalation_id"], event["task_id"], event["actor"]) == (
        "01JDESC",
        "refund-4711",
        "U012AB3CD",
    )
    assert str(event["time"]).endswith("+0000") and "T" in str(event["time"])
    assert plain["message"] == "no ids here: 3" and "task_id" not in plain


def test_the_message_and_every_extra_field_are_redacted(written: io.StringIO) -> None:
    try:
        raise ValueError("card 4111 1111 1111 1111 refused")
    except ValueError:
        logging.getLogger("escbot").exception(
            "mail from %s",
            "jane.doe@example.com",
            extra=log_ids(task_id="refund-1", actor="jane.doe@example.com")
            | {"detail": {"to": "jane.doe@example.com", "note": ["call +44 20 7946 0958"]}},
        )
    [line] = lines(written)
    text = json.dumps(line)
    assert "jane.doe" not in text and "4111" not in text and "7946" not in text
    assert line["message"] == "mail from [email-1]"
    assert line["actor"] == "[email-1]"  # the same value, the same placeholder in one line
    assert line["detail"] == {"to": "[email-1]", "note": ["call [phone-1]"]}
    assert line["task_id"] == "refund-1"
    assert "[card-1]" in str(line["exc_info"])


def test_text_stays_the_default_form() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        configure_logging(logging.INFO, "text", out, force=True)
        logging.getLogger("escbot").info("hello", extra=log_ids(task_id="t1"))
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)
    assert out.getvalue().rstrip().endswith("INFO escbot: hello")
