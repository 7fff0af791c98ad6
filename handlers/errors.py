"""The one place where errors become a message for the person who acted.

Listeners ack at once and do their work in a lazy function, inside `reporting(...)`:
Bolt only logs what a lazy function raises. Errors of an ack function reach Bolt's error
handler, registered here too. Either way the message is ephemeral: a refusal is for the
person who asked, not the channel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from blocks.text import when, who
from bot.clock import parse_iso
from bot.errors import (
    AlreadyDecided,
    AlreadyReviewed,
    ControlPlaneUnavailable,
    EscbotError,
    NotAllowed,
    NothingChanged,
    UnknownTask,
)
from bot.slack.outage import outage_of, reported, unreachable

log = logging.getLogger(__name__)

INFO = ":information_source:"
UNEXPECTED = (
    "❌ Something went wrong on our side (it is logged). `/agent status <task_id>` and "
    "`/agent list` show what was recorded."
)
SLACK_DOWN = "⚠️ Slack did not answer the bot just now. Please try again in a moment."


def describe(error: BaseException) -> str:
    if isinstance(error, AlreadyDecided):
        at = when(parse_iso(error.at)) if error.at else "earlier"
        return (
            f"{INFO} Already *{error.decision}* by {who(error.by)} at {at}. "
            "Your click changed nothing."
        )
    if isinstance(error, AlreadyReviewed):
        at = when(parse_iso(error.at)) if error.at else "earlier"
        return (
            f"{INFO} Already reviewed (*{error.verdict}*) by {who(error.by)} at {at}. "
            "Your verdict changed nothing."
        )
    if isinstance(error, NotAllowed):
        return f"🚫 {error.message}. Nothing was changed."
    if isinstance(error, ControlPlaneUnavailable):
        return f"⚠️ {error.message}"
    if isinstance(error, NothingChanged):
        return f"{INFO} {_sentence(error.message)} Nothing was changed."
    if isinstance(error, UnknownTask):
        return f"⚠️ {_sentence(error.message)}"
    if isinstance(error, EscbotError):
        return f"⚠️ {_sentence(error.message)} Nothing was changed."
    if unreachable(error):
        return SLACK_DOWN
    return UNEXPECTED


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _where(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(channel, user, thread_ts) to answer in, for requests without a response_url."""
    event = body.get("event") or {}
    if event:
        return event.get("channel"), event.get("user"), event.get("thread_ts")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    view = body.get("view") or {}
    if channel is None and view.get("private_metadata"):
        try:
            channel = json.loads(view["private_metadata"]).get("c")
        except (ValueError, AttributeError):
            channel = None
    return channel, user, None


def tell(error: BaseException, body: dict[str, Any], client: WebClient, respond: Any) -> None:
    text = describe(error)
    if respond is not None and (body.get("response_url") or body.get("response_urls")):
        respond(text=text, response_type="ephemeral", replace_original=False)
        return
    channel, user, thread_ts = _where(body)
    if channel and user:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    else:
        log.warning("no way to tell the user: %s", text)


def report(error: Exception, body: dict[str, Any], client: WebClient, respond: Any) -> None:
    """Tell the person; log what went wrong unless it is Slack being unreachable, which
    the client's outage watch reports once for the whole outage, not once per click."""
    if not isinstance(error, EscbotError) and not reported(client, error):
        log.error("listener failed", exc_info=error)
    try:
        tell(error, body, client, respond)
    except Exception as failure:
        outage = outage_of(client)
        # A response_url is Slack's too, but not a Web API call: count it here.
        if outage is None or not outage.observe(failure):
            log.exception("could not tell the user about: %s", error)


@contextmanager
def reporting(body: dict[str, Any], client: WebClient, respond: Any = None) -> Iterator[None]:
    """Run a listener's work after ack(); any error becomes the person's ephemeral answer."""
    try:
        yield
    except Exception as error:
        report(error, body, client, respond)


def register(app: App) -> None:
    app.error(report)
