"""Modal submissions: the feedback of a rejection, the instruction of a redirect."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from blocks.actions import Callback, Field_, ModalMetadata
from bot.contracts import Verdict
from handlers.deps import Deps, Registry, bound
from handlers.errors import reporting

REQUIRED = {
    Field_.COMMENT: "Tell the agent why, so it can do better.",
    Field_.INSTRUCTION: "Tell the agent what to do instead.",
}
DECISIONS: dict[Callback, tuple[Verdict, Field_]] = {
    Callback.REJECT: ("reject", Field_.COMMENT),
    Callback.REDIRECT: ("redirect", Field_.INSTRUCTION),
}


def submitted_text(view: dict[str, Any], field: Field_) -> str:
    values = view.get("state", {}).get("values", {})
    return ((values.get(field.value) or {}).get(Field_.VALUE.value) or {}).get("value") or ""


def check_submission(ack: Ack, view: dict[str, Any], *, field: Field_) -> None:
    if not submitted_text(view, field).strip():
        ack(response_action="errors", errors={field.value: REQUIRED[field]})
        return
    ack()  # closes the modal


def decide(
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,
    *,
    deps: Deps,
    verdict: Verdict,
    field: Field_,
) -> None:
    text = submitted_text(view, field).strip()
    if not text:
        return  # refused in check_submission; the modal is still open
    with reporting(body, client):
        meta = ModalMetadata.model_validate_json(view["private_metadata"])
        if field == Field_.COMMENT:
            deps.service.decide(meta.escalation_id, body["user"]["id"], verdict, comment=text)
        else:
            deps.service.decide(meta.escalation_id, body["user"]["id"], verdict, instruction=text)


def register(app: App, deps: Deps, registry: Registry) -> None:
    for callback, (verdict, field) in DECISIONS.items():
        registry.modal_callbacks.add(callback.value)
        check = bound(check_submission, field=field)
        work = bound(decide, deps=deps, verdict=verdict, field=field)
        app.view(callback.value)(ack=check, lazy=[work])
