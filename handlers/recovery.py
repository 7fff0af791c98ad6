"""The buttons under a pause's announcement: *Resume* lifts the pause at once; *Restart
with changes* and *Abandon* open their modal (only for someone who may act: refused at
the click, ephemerally, and audited), whose submission restarts or abandons the task."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from blocks.actions import Action, Callback, Field_, TaskButtonValue, TaskModalMetadata
from blocks.recovery import abandon_modal, restart_modal
from bot.errors import InvalidInput
from handlers.actions import acknowledge_click, channel_of, user_of
from handlers.deps import Deps, Registry, bound
from handlers.errors import reporting
from handlers.submissions import require_text, submitted_text

INSTRUCTION_REQUIRED = "Tell the agent what to do differently."


def task_of(action: dict[str, Any]) -> str:
    try:
        return TaskButtonValue.model_validate_json(action.get("value") or "").task_id
    except ValidationError:
        raise InvalidInput("this button does not belong to a pause's announcement") from None


def _answer(respond: Respond, text: str) -> None:
    respond(text=text, response_type="ephemeral", replace_original=False)


def resume(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        result = deps.service.resume(task_of(action), user_of(body))
        _answer(respond, f"▶️ {result.message}")


def open_modal(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    deps: Deps,
    verb: str,
) -> None:
    with reporting(body, client, respond):
        task_id = task_of(action)
        deps.service.check_may(user_of(body), "operator", verb, task_id=task_id)
        build = restart_modal if verb == "restart" else abandon_modal
        client.views_open(trigger_id=body["trigger_id"], view=build(task_id, channel_of(body)))


def check_restart(ack: Ack, view: dict[str, Any]) -> None:
    require_text(ack, view, Field_.INSTRUCTION, INSTRUCTION_REQUIRED)


def restart(body: dict[str, Any], view: dict[str, Any], client: WebClient, *, deps: Deps) -> None:
    text = submitted_text(view, Field_.INSTRUCTION).strip()
    if not text:
        return  # refused in check_restart; the modal is still open
    with reporting(body, client):
        meta = TaskModalMetadata.model_validate_json(view["private_metadata"])
        deps.service.restart(meta.task_id, user_of(body), text)


def close_modal(ack: Ack) -> None:
    ack()


def abandon(body: dict[str, Any], view: dict[str, Any], client: WebClient, *, deps: Deps) -> None:
    with reporting(body, client):
        meta = TaskModalMetadata.model_validate_json(view["private_metadata"])
        explanation = submitted_text(view, Field_.EXPLANATION).strip() or None
        deps.service.abandon(meta.task_id, user_of(body), explanation)


def register(app: App, deps: Deps, registry: Registry) -> None:
    for action, work in (
        (Action.TASK_RESUME, bound(resume, deps=deps)),
        (Action.TASK_RESTART, bound(open_modal, deps=deps, verb="restart")),
        (Action.TASK_ABANDON, bound(open_modal, deps=deps, verb="abandon")),
    ):
        registry.actions.add(action.value)
        app.action(action.value)(ack=acknowledge_click, lazy=[work])
    for callback, check, submitted in (
        (Callback.TASK_RESTART, check_restart, bound(restart, deps=deps)),
        (Callback.TASK_ABANDON, close_modal, bound(abandon, deps=deps)),
    ):
        registry.modal_callbacks.add(callback.value)
        app.view(callback.value)(ack=check, lazy=[submitted])
