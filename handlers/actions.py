"""Card buttons: acked at once; then the decision, or a modal (a click's trigger id lives
3 seconds, so Reject, Redirect and Full context open theirs straight away)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from blocks.actions import Action, ButtonValue
from blocks.modals import context_modal, redirect_modal, reject_modal
from bot.clock import iso
from bot.errors import AlreadyDecided, InvalidInput
from bot.records import EscalationRecord
from handlers.deps import Deps, Registry
from handlers.errors import reporting


def escalation_of(action: dict[str, Any]) -> str:
    try:
        return ButtonValue.model_validate_json(action.get("value") or "").escalation_id
    except ValidationError:
        raise InvalidInput("this button does not belong to an escalation card") from None


def user_of(body: dict[str, Any]) -> str:
    return body["user"]["id"]


def channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id")


def acknowledge_click(ack: Ack) -> None:
    ack()


def register(app: App, deps: Deps, registry: Registry) -> None:
    def on(action: Action, work: Callable[..., None]) -> None:
        registry.actions.add(action.value)
        app.action(action.value)(ack=acknowledge_click, lazy=[work])

    def decision(verdict: str) -> Callable[..., None]:
        def decide(
            body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
        ) -> None:
            with reporting(body, client, respond):
                deps.service.decide(escalation_of(action), user_of(body), verdict)  # type: ignore[arg-type]

        return decide

    def acknowledge(
        body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        with reporting(body, client, respond):
            deps.service.acknowledge(escalation_of(action), user_of(body))

    def modal(build: Callable[..., View], *, open_only: bool) -> Callable[..., None]:
        def open_modal(
            body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
        ) -> None:
            with reporting(body, client, respond):
                view = deps.service.get_escalation(escalation_of(action))
                if open_only and not view.is_open:
                    raise _decided(view)
                built = build(view, channel_of(body)) if open_only else build(view)
                client.views_open(trigger_id=body["trigger_id"], view=built)

        return open_modal

    def confirm_revive_all(body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        with reporting(body, client, respond):
            result = deps.service.revive_all(user_of(body))
            respond(text=f"✅ {result.message}", response_type="ephemeral", replace_original=False)

    on(Action.ACKNOWLEDGE, acknowledge)
    on(Action.APPROVE, decision("approve"))
    on(Action.TERMINATE, decision("terminate"))
    on(Action.REJECT, modal(reject_modal, open_only=True))
    on(Action.REDIRECT, modal(redirect_modal, open_only=True))
    on(Action.FULL_CONTEXT, modal(context_modal, open_only=False))
    on(Action.CONFIRM_REVIVE_ALL, confirm_revive_all)


def _decided(view: EscalationRecord) -> AlreadyDecided:
    at = iso(view.decided_at) if view.decided_at else None
    return AlreadyDecided(view.id, view.state, view.decided_by, at)
