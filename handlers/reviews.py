"""Review card buttons and the flag modal: *Looks right* gives the verdict at once; *Flag*
opens the modal (only for someone who may give a verdict, and only while none is given),
whose submission flags, and may pause the task or its agent."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from blocks.actions import Action, Callback, Field_, ReviewButtonValue, ReviewModalMetadata
from blocks.review import NO_PAUSE, flag_modal
from bot.core.review_verdicts import already_reviewed
from bot.errors import InvalidInput
from handlers.actions import acknowledge_click, channel_of, user_of
from handlers.deps import Deps, Registry, bound
from handlers.errors import reporting
from handlers.submissions import require_text, submitted_text

WRONG_REQUIRED = "Say what is wrong, so the agent's owners can fix it."


def review_of(action: dict[str, Any]) -> int:
    try:
        return ReviewButtonValue.model_validate_json(action.get("value") or "").review_id
    except ValidationError:
        raise InvalidInput("this button does not belong to a review card") from None


def looks_right(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    with reporting(body, client, respond):
        deps.service.review(review_of(action), user_of(body), "looks_right")


def open_flag_modal(
    body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond, *, deps: Deps
) -> None:
    """Refused at the click (ephemerally, and audited) to someone who may not give a
    verdict, and to everyone once the review has one."""
    with reporting(body, client, respond):
        review = deps.service.get_review(review_of(action))
        deps.service.check_may(
            user_of(body),
            "operator",
            "review",
            task_id=review.task_id,
            escalation_id=review.escalation_id,
        )
        if review.reviewed:
            raise already_reviewed(review)
        client.views_open(trigger_id=body["trigger_id"], view=flag_modal(review, channel_of(body)))


def pause_choice(view: dict[str, Any]) -> str | None:
    values = view.get("state", {}).get("values", {})
    chosen = ((values.get(Field_.PAUSE.value) or {}).get(Field_.VALUE.value) or {}).get(
        "selected_option"
    ) or {}
    value = chosen.get("value")
    return None if value in (None, NO_PAUSE) else str(value)


def check_flag(ack: Ack, view: dict[str, Any]) -> None:
    require_text(ack, view, Field_.WRONG, WRONG_REQUIRED)


def flag(body: dict[str, Any], view: dict[str, Any], client: WebClient, *, deps: Deps) -> None:
    text = submitted_text(view, Field_.WRONG).strip()
    if not text:
        return  # refused in check_flag; the modal is still open
    with reporting(body, client):
        meta = ReviewModalMetadata.model_validate_json(view["private_metadata"])
        deps.service.review(
            meta.review_id, user_of(body), "flagged", note=text, pause=pause_choice(view)
        )


def register(app: App, deps: Deps, registry: Registry) -> None:
    for action, work in (
        (Action.REVIEW_LOOKS_RIGHT, bound(looks_right, deps=deps)),
        (Action.REVIEW_FLAG, bound(open_flag_modal, deps=deps)),
    ):
        registry.actions.add(action.value)
        app.action(action.value)(ack=acknowledge_click, lazy=[work])
    registry.modal_callbacks.add(Callback.REVIEW_FLAG.value)
    app.view(Callback.REVIEW_FLAG.value)(ack=check_flag, lazy=[bound(flag, deps=deps)])
