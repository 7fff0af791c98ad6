"""Modals: reject with feedback, redirect with an instruction, edit the arguments then
approve, the full context."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from blocks.actions import Callback, Field_, ModalMetadata
from blocks.text import (
    MAX_MODAL_BLOCKS,
    SECTION_LIMIT,
    code,
    compact_json,
    escape,
    fit,
    pretty_json,
)
from bot.errors import InvalidInput
from bot.records import EscalationRecord

INPUT_LIMIT = 3000  # characters of a plain-text input, its initial value included
METADATA_LIMIT = 3000


def _summary(view: EscalationRecord) -> SectionBlock:
    action = (view.action or {}).get("name", "-")
    text = (
        f"*{escape(view.agent)}* on `{view.task_id}` wants `{escape(str(action))}`\n"
        f"{escape(fit(view.reason, 1500))}"
    )
    return SectionBlock(text=MarkdownTextObject(text=text))


def _ask(
    callback: Callback,
    title: str,
    submit: str,
    field: Field_,
    label: str,
    hint: str,
    view: EscalationRecord,
    channel: str | None,
) -> View:
    return View(
        type="modal",
        callback_id=callback.value,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=ModalMetadata(escalation_id=view.id, channel=channel).dump(),
        blocks=[
            _summary(view),
            InputBlock(
                block_id=field.value,
                label=PlainTextObject(text=label),
                hint=PlainTextObject(text=hint),
                element=PlainTextInputElement(
                    action_id=Field_.VALUE.value, multiline=True, max_length=3000
                ),
            ),
        ],
    )


def reject_modal(view: EscalationRecord, channel: str | None = None) -> View:
    return _ask(
        Callback.REJECT,
        "Reject",
        "Reject",
        Field_.COMMENT,
        "Feedback for the agent",
        "Why not, and what it should do instead. The agent receives this with the decision.",
        view,
        channel,
    )


def redirect_modal(view: EscalationRecord, channel: str | None = None) -> View:
    return _ask(
        Callback.REDIRECT,
        "Redirect",
        "Redirect",
        Field_.INSTRUCTION,
        "Instruction",
        "What the agent should do instead. It arrives with the decision and in its inbox.",
        view,
        channel,
    )


def edit_modal(view: EscalationRecord, channel: str | None = None) -> View:
    """The arguments under approval as JSON, to change and approve in one go."""
    if not view.action:
        raise InvalidInput(f"escalation {view.id} proposes no action: there is nothing to edit")
    args = view.args_under_approval
    text = pretty_json(args)
    if len(text) > INPUT_LIMIT:
        text = compact_json(args)
    if len(text) > INPUT_LIMIT:
        raise InvalidInput(
            f"the arguments of {view.id} are too long to edit in Slack ({len(text)} "
            f"characters, at most {INPUT_LIMIT}): use `escbot decide {view.id} approve --args`"
        )
    metadata = ModalMetadata(escalation_id=view.id, channel=channel)
    schema = view.action.get("schema")
    if isinstance(schema, dict):
        with_schema = ModalMetadata(escalation_id=view.id, channel=channel, args_schema=schema)
        if len(with_schema.dump()) <= METADATA_LIMIT:
            metadata = with_schema
    needs = (
        f" It counts as one of the {view.approvals_needed} approvals needed; approvals given"
        " for other arguments are withdrawn."
        if view.approvals_needed > 1
        else ""
    )
    return View(
        type="modal",
        callback_id=Callback.EDIT.value,
        title=PlainTextObject(text="Edit & approve"),
        submit=PlainTextObject(text="Approve"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=metadata.dump(),
        blocks=[
            _summary(view),
            InputBlock(
                block_id=Field_.ARGS.value,
                label=PlainTextObject(text="Arguments (JSON)"),
                hint=PlainTextObject(
                    text=fit(
                        "A JSON object. The agent acts on these arguments instead of the ones"
                        " it proposed." + needs,
                        2000,
                    )
                ),
                element=PlainTextInputElement(
                    action_id=Field_.VALUE.value,
                    multiline=True,
                    max_length=INPUT_LIMIT,
                    initial_value=text,
                ),
            ),
            InputBlock(
                block_id=Field_.COMMENT.value,
                label=PlainTextObject(text="Note for the agent"),
                optional=True,
                element=PlainTextInputElement(
                    action_id=Field_.VALUE.value, multiline=True, max_length=INPUT_LIMIT
                ),
            ),
        ],
    )


def context_modal(view: EscalationRecord) -> View:
    """Everything the agent sent, in as many sections as Slack allows."""
    parts: list[tuple[str, str]] = [("Reason", escape(view.reason))]
    if view.action:
        parts.append(("Proposed action", code(pretty_json(view.action))))
    context = dict(view.context)
    for key, title in (("policy_rule", "Policy rule"), ("source", "Source")):
        if context.get(key):
            parts.append((title, escape(str(context.pop(key)))))
    for key, title in (("tool_calls", "Tool calls"), ("state", "Agent state")):
        if context.get(key):
            parts.append((title, code(pretty_json(context.pop(key)))))
    if context:
        parts.append(("Other context", code(pretty_json(context))))

    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=fit(f"{view.agent} · {view.task_id}", 150)))
    ]
    budget = MAX_MODAL_BLOCKS - 2
    for title, body in parts:
        room = SECTION_LIMIT - len(title) - len(" (continued)") - 12  # heading, code fences
        for index, chunk in enumerate(_chunks(body, room)):
            if budget <= 0:
                break
            head = f"*{title}*\n" if index == 0 else f"*{title}* (continued)\n"
            text = head + (_close_code(chunk) if body.startswith("```") else chunk)
            blocks.append(SectionBlock(text=MarkdownTextObject(text=text)))
            budget -= 1
    if budget <= 0:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Cut at Slack's limit of 100 blocks; `escbot status "
                        f"{view.task_id} --json` shows everything."
                    )
                ]
            )
        )
    return View(
        type="modal",
        title=PlainTextObject(text="Full context"),
        close=PlainTextObject(text="Close"),
        blocks=blocks,
    )


def _chunks(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


def _close_code(chunk: str) -> str:
    """Each chunk of a code block is shown as a code block of its own."""
    body = chunk.removeprefix("```").removesuffix("```")
    return code(body)
