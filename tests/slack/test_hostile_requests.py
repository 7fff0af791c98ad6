"""Hostile requests to POST /slack/events: refused before their body is parsed unless
signed (401), refused as malformed when signed (400); never a 500 or a dropped
connection, never a traceback, and nothing changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from blocks.actions import Action, Callback
from tests.conftest import OPERATOR
from tests.slack.conftest import SIGNING_SECRET, Bot, wait_until
from tests.support.slack_requests import FORM, JSON

MALFORMED_BODIES = [
    pytest.param(b"payload={not", FORM, id="payload-not-json"),
    pytest.param(b"payload=", FORM, id="payload-empty"),
    pytest.param(b"payload=null", FORM, id="payload-null"),
    pytest.param(b"payload=%5B1%5D", FORM, id="payload-list"),
    pytest.param(b"[1,2]", JSON, id="json-list"),
    pytest.param(b"{", JSON, id="json-broken"),
    pytest.param(b"", JSON, id="empty"),
    pytest.param(b"\xff\xfe{}", JSON, id="not-utf8"),
    pytest.param(b"[" * 100_000, JSON, id="json-too-deep"),
    pytest.param(b'{"type":"event_callback","event":"message"}', JSON, id="event-not-object"),
]


def post(bot: Bot, body: bytes, headers: dict[str, str]) -> requests.Response:
    return bot.slack.session.post(bot.process.events_url, data=body, headers=headers, timeout=10)


def signed_with_timestamp(body: bytes, timestamp: str) -> dict[str, str]:
    """Headers signed correctly over whatever `timestamp` says."""
    base = b"v0:" + timestamp.encode("latin-1") + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


@contextmanager
def new_log(bot: Bot) -> Iterator[list[str]]:
    """The bot's log lines written inside the block."""
    start = len(bot.process.log())
    lines: list[str] = []
    yield lines
    time.sleep(0.2)  # the access line is written as the response goes out
    lines += bot.process.log()[start:].splitlines()


@pytest.mark.parametrize("timestamp", ["abc", "", "1e9", "12.5", "NaN", "1 7", "1_7", "-5", "0x1f"])
def test_a_malformed_timestamp_is_401_and_one_line(bot: Bot, timestamp: str) -> None:
    body = b"command=%2Fagent&text=list&user_id=" + OPERATOR.encode()
    with new_log(bot) as lines:
        response = post(bot, body, {"Content-Type": FORM, **signed_with_timestamp(body, timestamp)})
    assert response.status_code == 401
    assert response.json() == {"error": "invalid request"}
    assert "Traceback" not in "\n".join(lines)
    [line] = [line for line in lines if "/slack/events" in line]
    assert '"POST /slack/events" 401' in line and "X-Slack-Request-Timestamp" in line


@pytest.mark.parametrize("signature", ["", "v0=", "v1=" + "0" * 64, "v0=" + "é" * 64])
def test_a_malformed_signature_is_401(bot: Bot, signature: str) -> None:
    body = b"command=%2Fagent&text=list"
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": signature}
    with new_log(bot) as lines:
        response = post(bot, body, {"Content-Type": FORM, **headers})
    assert response.status_code == 401
    assert "Traceback" not in "\n".join(lines)


@pytest.mark.parametrize(("body", "content_type"), MALFORMED_BODIES)
def test_a_malformed_body_is_401_unsigned_and_400_signed(
    bot: Bot, body: bytes, content_type: str
) -> None:
    with new_log(bot) as lines:
        unsigned = post(bot, body, {"Content-Type": content_type})
        forged = post(
            bot, body, bot.slack.signed_headers(body, content_type, signature="v0=" + "0" * 64)
        )
        stale = post(
            bot,
            body,
            bot.slack.signed_headers(body, content_type, timestamp=int(time.time()) - 600),
        )
        signed = bot.slack.post(body, content_type)
    assert [unsigned.status_code, forged.status_code, stale.status_code] == [401, 401, 401]
    assert signed.status_code == 400, signed.text
    assert signed.json()["error"].startswith("malformed request")
    assert "Traceback" not in "\n".join(lines)


def click_payload(bot: Bot, **actions: Any) -> tuple[dict[str, Any], str]:
    data, card = bot.escalate()
    value = next(
        element["value"]
        for block in card.blocks or []
        for element in block.get("elements", [])
        if isinstance(element, dict) and element.get("action_id") == Action.APPROVE
    )
    payload = bot.slack.block_actions_payload(
        action_id=Action.APPROVE,
        value=value,
        user_id=OPERATOR,
        channel_id=card.channel,
        message_ts=card.ts,
        message_blocks=card.blocks,
    )
    return payload | actions, data["escalation_id"]


@pytest.mark.parametrize("actions", [[], "approve", [None], [{"value": "x"}], [{"action_id": 7}]])
def test_a_signed_click_without_proper_actions_is_400_and_changes_nothing(
    bot: Bot, actions: Any
) -> None:
    payload, escalation_id = click_payload(bot, actions=actions)
    before = bot.audit(escalation_id=escalation_id)
    response = bot.slack.interaction(payload)
    assert response.status_code == 400, response.text
    # The same click, well formed, still works: the card was not touched before.
    good, _ = click_payload(bot)
    assert bot.slack.interaction(good).status_code == 200
    time.sleep(0.3)
    assert bot.audit(escalation_id=escalation_id) == before
    assert not bot.rdb.exists(bot.key(f"decision:{escalation_id}"))


@pytest.mark.parametrize("drop", ["type", "callback_id"])
def test_a_view_submission_without_its_routing_fields_is_400(bot: Bot, drop: str) -> None:
    payload = bot.slack.view_submission_payload(
        callback_id=Callback.REJECT,
        user_id=OPERATOR,
        values={"comment": {"value": {"type": "plain_text_input", "value": "no"}}},
    )
    del payload["view"][drop]
    with new_log(bot) as lines:
        response = bot.slack.interaction(payload)
    assert response.status_code == 400, response.text
    assert "Traceback" not in "\n".join(lines)


ODD_VALUES = [None, 0, 1.5, True, "x", [], [None], ["x"], {}, {"id": 5}]


def odd_variants(payload: dict[str, Any], inner: str | None = None) -> Iterator[dict[str, Any]]:
    """The payload with each field (of `payload[inner]`, if given) set to each odd value."""
    target = payload[inner] if inner else payload
    for field in list(target):
        for odd in ODD_VALUES:
            changed = target | {field: odd}
            yield payload | {inner: changed} if inner else changed


@pytest.mark.parametrize("kind", ["click", "submission", "event", "event.inner"])
def test_no_envelope_field_of_any_type_makes_a_500(bot: Bot, kind: str) -> None:
    """Every field of a real payload, in turn, given each JSON type: the answer is an
    HTTP status below 500, the connection stays up, and no listener fails on it."""
    if kind == "click":
        payload, _ = click_payload(bot)
        payload["actions"][0]["value"] = json.dumps({"e": "01NOSUCHESCALATION"})
        variants, send = odd_variants(payload), bot.slack.interaction
    elif kind == "submission":
        payload = bot.slack.view_submission_payload(
            callback_id=Callback.REJECT,
            user_id=OPERATOR,
            values={"comment": {"value": {"type": "plain_text_input", "value": "no"}}},
            private_metadata='{"e": "01NOSUCHESCALATION"}',
        )
        variants, send = odd_variants(payload), bot.slack.interaction
    else:
        event = bot.slack.message_event(
            text="hi", user=OPERATOR, channel="C0NOWHERE", thread_ts="1.000001"
        )
        payload = bot.slack.event_payload(event)
        inner = "event" if kind == "event.inner" else None
        variants, send = odd_variants(payload, inner), bot.slack.post_json
    start = len(bot.process.log())
    for variant in variants:
        response = send(variant)
        assert response.status_code < 500, (variant, response.text)
    time.sleep(1)  # the lazy listeners of the requests that got through
    lines = bot.process.log()[start:].splitlines()
    # Neither the front nor a listener failed on a shape. (A response_url that is not a
    # URL cannot be answered, and the log says so: not a failure of the shape checks.)
    assert not [line for line in lines if "ERROR escbot.http" in line or "listener failed" in line]


def test_a_kill_whose_reason_says_payload_is_a_kill(bot: Bot) -> None:
    """Bolt's own parsing takes any form with the word "payload" in it for an interaction."""
    task = f"refund-{uuid.uuid4().hex[:8]}"
    response = bot.command(f"kill {task} the payload was corrupt", OPERATOR)
    assert response.status_code == 200
    wait_until(lambda: bot.rdb.exists(bot.key(f"kill:{task}")), what="the kill")
    [row] = bot.wait_audit(task_id=task, action="kill")
    assert row["reason"] == "the payload was corrupt"
