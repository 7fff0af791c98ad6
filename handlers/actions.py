"""Card buttons: acked at once; then the decision, or a modal (a click's trigger id lives
3 seconds, so Reject, Redirect, Edit & approve and Full context open theirs straight
away)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from blocks.actions import Action, ButtonValue, ModalMetadata
from blocks.digest import card_modal
from blocks.modals import context_modal, edit_modal, redirect_modal, reject_modal
from bot.contracts import Verdict
from bot.core.base import already_decided
from bot.errors import InvalidInput
from bot.records import EscalationRecord
from bot.slack.render import render_card
from handlers.deps import Deps, Registry, bound
from handlers.errors import reporting

ModalBuilder = Callable[[EscalationRecord, str | None], View]


def escalation_of(action: dict[str, Any]) -> str:
    try:
        return ButtonValue.model_validate_json(action.get("value") or "").escalation_id
    except ValidationError:
        raise InvalidInput("this button does not belong to an escalation card") from None


def user_of(body: dict[str, Any]) -> str:
    return str(body["user"]["id"])


def channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id")


def acknowledge_click(ack: Ack) -> None:
    ack()


def in_modal(body: dict[str, Any]) -> bool:
    """The click came from a card opened in a modal (from a digest), not from a message."""
    return (body.get("container") or {}).get("type") == "view" and bool(body.get("view"))


def _card_view(escalation: EscalationRecord, deps: Deps, channel: str | None) -> View:
    card = escalation.cards[-1] if escalation.cards else None
    return card_modal(
        escalation, render_card(deps.service.policy, escalation, card, deps.clock()), channel
    )


def _redraw_modal(body: dict[str, Any], client: WebClient, deps: Deps, escalation_id: str) -> None:
    """After a decision made in a card's modal: the modal shows the card as it is now."""
    if in_modal(body):
        escalation = deps.service.get_escalation(escalation_id)
        view = _card_view(escalation, deps, _modal_channel(body))
        client.views_update(view_id=body["view"]["id"], view=view)


def _modal_channel(body: dict[str, Any]) -> str | None:
    try:
        return ModalMetadata.model_validate_json(body["view"]["private_metadata"]).channel
    except (KeyError, TypeError, ValidationError):
        return None


def _open(client: WebClient, body: dict[str, Any], view: View) -> None:
    """A modal over the click's: pushed onto a card's modal, opened from a message."""
    if in_modal(body):
        client.views_push(trigger_id=body["trigger_id"], view=view)
    else:
        client.views_open(trigger_id=body["trigger_id"], view=view)


def decide(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    deps: Deps,
    verdict: Verdict,
) -> None:
    with reporting(body, client, respond):
        escalation_id = escalation_of(action)
        deps.service.decide(escalation_id, user_of(body), verdict)
        _redraw_modal(body, client, deps, escalation_id)


def acknowledge(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        escalation_id = escalation_of(action)
        deps.service.acknowledge(escalation_id, user_of(body))
        _redraw_modal(body, client, deps, escalation_id)


def open_card(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    """A digest's button: the escalation's card, as it is now, in a modal."""
    with reporting(body, client, respond):
        escalation = deps.service.get_escalation(escalation_of(action))
        view = _card_view(escalation, deps, channel_of(body))
        client.views_open(trigger_id=body["trigger_id"], view=view)


def escalate(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        result = deps.service.escalate_now(escalation_of(action), user_of(body))
        respond(text=f"⬆️ {result.message}", response_type="ephemeral", replace_original=False)


def open_decision_modal(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    deps: Deps,
    verdict: Verdict,
    build: ModalBuilder,
) -> None:
    """A modal that leads to a decision (reject, redirect, edit): only for someone who may make
    it (refused at the click, ephemerally, and audited), and only while it is open."""
    with reporting(body, client, respond):
        escalation_id = escalation_of(action)
        deps.service.check_may(user_of(body), "operator", verdict, escalation_id=escalation_id)
        escalation = deps.service.get_escalation(escalation_id)
        if not escalation.is_open:
            raise already_decided(escalation)
        channel = channel_of(body) or (_modal_channel(body) if in_modal(body) else None)
        _open(client, body, build(escalation, channel))


def open_context_modal(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        escalation = deps.service.get_escalation(escalation_of(action))
        _open(client, body, context_modal(escalation))


def confirm_revive_all(
    body: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        result = deps.service.revive_all(user_of(body))
        respond(text=f"✅ {result.message}", response_type="ephemeral", replace_original=False)


def register(app: App, deps: Deps, registry: Registry) -> None:
    listeners: dict[Action, Callable[..., None]] = {
        Action.ACKNOWLEDGE: bound(acknowledge, deps=deps),
        Action.APPROVE: bound(decide, deps=deps, verdict="approve"),
        Action.TERMINATE: bound(decide, deps=deps, verdict="terminate"),
        Action.REJECT: bound(open_decision_modal, deps=deps, verdict="reject", build=reject_modal),
        Action.REDIRECT: bound(
            open_decision_modal, deps=deps, verdict="redirect", build=redirect_modal
        ),
        Action.EDIT: bound(open_decision_modal, deps=deps, verdict="approve", build=edit_modal),
        Action.ESCALATE: bound(escalate, deps=deps),
        Action.FULL_CONTEXT: bound(open_context_modal, deps=deps),
        Action.CONFIRM_REVIVE_ALL: bound(confirm_revive_all, deps=deps),
    }
    for action, work in listeners.items():
        registry.actions.add(action.value)
        app.action(action.value)(ack=acknowledge_click, lazy=[work])
    # A digest's buttons are numbered (one action id per button): escalation.open.<n>.
    registry.actions.add(Action.OPEN_CARD.value)
    opened = re.compile(rf"^{re.escape(Action.OPEN_CARD.value)}\.\d+$")
    app.action(opened)(ack=acknowledge_click, lazy=[bound(open_card, deps=deps)])
