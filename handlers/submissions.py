"""Modal submissions: the feedback of a rejection, the instruction of a redirect, the
arguments of an edit (checked before the modal closes, so a typo is fixed in place)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from blocks.actions import Callback, Field_, ModalMetadata
from blocks.text import fit
from bot.contracts import Verdict
from bot.edited_args import check_args, parse_args
from bot.errors import InvalidInput
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


def require_text(ack: Ack, view: dict[str, Any], field: Field_, why: str) -> None:
    """A modal's text that must not be empty: the error under its field (the modal stays
    open), else the ack that closes it."""
    if not submitted_text(view, field).strip():
        ack(response_action="errors", errors={field.value: why})
        return
    ack()  # closes the modal


def check_submission(ack: Ack, view: dict[str, Any], *, field: Field_) -> None:
    require_text(ack, view, field, REQUIRED[field])


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


def edited_args(view: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an edit modal: JSON, an object, and within the action's schema
    when the modal carries it (else the service checks it after the modal closed)."""
    meta = ModalMetadata.model_validate_json(view["private_metadata"])
    return check_args(parse_args(submitted_text(view, Field_.ARGS)), meta.args_schema)


def check_edit(ack: Ack, view: dict[str, Any]) -> None:
    try:
        edited_args(view)
    except InvalidInput as exc:
        ack(response_action="errors", errors={Field_.ARGS.value: fit(str(exc), 300)})
        return
    ack()


def approve_edited(
    body: dict[str, Any], view: dict[str, Any], client: WebClient, *, deps: Deps
) -> None:
    with reporting(body, client):
        meta = ModalMetadata.model_validate_json(view["private_metadata"])
        comment = submitted_text(view, Field_.COMMENT).strip() or None
        deps.service.decide(
            meta.escalation_id,
            body["user"]["id"],
            "approve",
            args=edited_args(view),
            comment=comment,
        )


def register(app: App, deps: Deps, registry: Registry) -> None:
    registry.modal_callbacks.add(Callback.EDIT.value)
    app.view(Callback.EDIT.value)(ack=check_edit, lazy=[bound(approve_edited, deps=deps)])
    for callback, (verdict, field) in DECISIONS.items():
        registry.modal_callbacks.add(callback.value)
        check = bound(check_submission, field=field)
        work = bound(decide, deps=deps, verdict=verdict, field=field)
        app.view(callback.value)(ack=check, lazy=[work])
