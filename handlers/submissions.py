"""Modal submissions: the feedback of a rejection, the instruction of a redirect."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from blocks.actions import Callback, Field_, ModalMetadata
from handlers.deps import Deps, Registry
from handlers.errors import reporting

REQUIRED = {
    Field_.COMMENT: "Tell the agent why, so it can do better.",
    Field_.INSTRUCTION: "Tell the agent what to do instead.",
}


def submitted_text(view: dict[str, Any], field: Field_) -> str:
    values = view.get("state", {}).get("values", {})
    return ((values.get(field.value) or {}).get(Field_.VALUE.value) or {}).get("value") or ""


def register(app: App, deps: Deps, registry: Registry) -> None:
    def on(callback: Callback, verdict: str, field: Field_) -> None:
        def check_submission(ack: Ack, view: dict[str, Any]) -> None:
            if not submitted_text(view, field).strip():
                ack(response_action="errors", errors={field.value: REQUIRED[field]})
                return
            ack()  # closes the modal

        def decide(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
            text = submitted_text(view, field).strip()
            if not text:
                return  # refused in check_submission; the modal is still open
            with reporting(body, client):
                meta = ModalMetadata.model_validate_json(view["private_metadata"])
                words = {"comment": text} if field == Field_.COMMENT else {"instruction": text}
                deps.service.decide(meta.escalation_id, body["user"]["id"], verdict, **words)  # type: ignore[arg-type]

        registry.views.add(callback.value)
        app.view(callback.value)(ack=check_submission, lazy=[decide])

    on(Callback.REJECT, "reject", Field_.COMMENT)
    on(Callback.REDIRECT, "redirect", Field_.INSTRUCTION)
