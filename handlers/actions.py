"""Card buttons: acked at once; then the decision, or a modal (a click's trigger id lives
3 seconds, so Reject, Redirect, Edit & approve and Full context open theirs straight
away)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from blocks.actions import Action, ButtonValue
from blocks.modals import context_modal, edit_modal, redirect_modal, reject_modal
from bot.contracts import Verdict
from bot.core.base import already_decided
from bot.errors import InvalidInput
from bot.records import EscalationRecord
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
        deps.service.decide(escalation_of(action), user_of(body), verdict)


def acknowledge(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        deps.service.acknowledge(escalation_of(action), user_of(body))


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
        client.views_open(trigger_id=body["trigger_id"], view=build(escalation, channel_of(body)))


def open_context_modal(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        escalation = deps.service.get_escalation(escalation_of(action))
        client.views_open(trigger_id=body["trigger_id"], view=context_modal(escalation))


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
