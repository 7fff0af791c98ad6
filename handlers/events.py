"""A person's reply in a card's thread goes to the agent's inbox, once, and is marked."""

from __future__ import annotations

import contextlib
import html
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import NothingChanged
from bot.slack.outage import reported
from handlers.deps import Deps, Registry, bound
from handlers.errors import reporting

log = logging.getLogger(__name__)

DELIVERED = "incoming_envelope"
PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


def is_person_reply(event: dict[str, Any]) -> bool:
    """A human's message inside a thread; never a bot's (this one included) or an edit."""
    return (
        event.get("subtype") in PERSON_SUBTYPES
        and not event.get("bot_id")
        and bool(event.get("user"))
        and bool(event.get("thread_ts"))
        and event.get("thread_ts") != event.get("ts")
    )


def relay_reply(
    event: dict[str, Any], body: dict[str, Any], client: WebClient, *, deps: Deps
) -> None:
    if not is_person_reply(event):
        return
    with reporting(body, client):
        escalation = deps.service.escalation_for_message(event["channel"], event["thread_ts"])
        if escalation is None:
            return  # a thread that is not under a card
        # A retried event (same message) is refused as already delivered: mark it anyway.
        with contextlib.suppress(NothingChanged):
            deps.service.relay_message(
                escalation.task_id,
                event["user"],
                html.unescape(event.get("text") or ""),
                escalation_id=escalation.id,
                idempotency_key=f"slack:{event['channel']}:{event['ts']}",
            )
        mark_delivered(client, event)


def register(app: App, deps: Deps, registry: Registry) -> None:
    registry.events.add("message")
    app.event("message")(ack=acknowledge_event, lazy=[bound(relay_reply, deps=deps)])


def acknowledge_event(ack: Ack) -> None:
    ack()


def mark_delivered(client: WebClient, event: dict[str, Any]) -> None:
    try:
        client.reactions_add(channel=event["channel"], timestamp=event["ts"], name=DELIVERED)
    except SlackApiError as exc:
        if reported(client, exc):
            return
        if exc.response is None or exc.response.get("error") != "already_reacted":
            log.warning("could not mark %s as delivered: %s", event["ts"], exc)
