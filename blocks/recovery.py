"""Recovery after a pause (CONTRACTS §11): the pause's announcement with *Resume*,
*Restart with changes* and *Abandon*, and the two modals those ask through."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from blocks.actions import Action, Callback, Field_, TaskButtonValue, TaskModalMetadata
from blocks.text import SECTION_LIMIT, escape, fit, who
from bot.ids import is_agent_target
from bot.records import AuditRecord

INSTRUCTION_LIMIT = 3000


def pause_announcement(record: AuditRecord) -> tuple[list[Block], str]:
    """⏸️ who paused what and why, and what can be done next. A pause of every task of an
    agent offers *Resume* only: restart and abandon act on one task."""
    target = record.task_id or ""
    reason = f": {escape(fit(record.reason, 500))}" if record.reason else ""
    if is_agent_target(target):
        what = f"Every task of `{escape(target.removeprefix('agent:'))}` is paused"
    else:
        what = f"`{target}` paused"
    text = f"⏸️ {what} by {who(record.actor)}{reason}"
    value = TaskButtonValue(task_id=target).dump()
    buttons = [ButtonElement(text="Resume", action_id=Action.TASK_RESUME.value, value=value)]
    if not is_agent_target(target):
        buttons += [
            ButtonElement(
                text="Restart with changes", action_id=Action.TASK_RESTART.value, value=value
            ),
            ButtonElement(
                text="Abandon", action_id=Action.TASK_ABANDON.value, value=value, style="danger"
            ),
        ]
    section = SectionBlock(text=MarkdownTextObject(text=fit(text, SECTION_LIMIT)))
    return [section, ActionsBlock(elements=buttons)], f"{target} paused"


def _modal(
    callback: Callback,
    title: str,
    submit: str,
    intro: str,
    field: Field_,
    label: str,
    hint: str,
    task_id: str,
    channel: str | None,
    *,
    optional: bool,
) -> View:
    return View(
        type="modal",
        callback_id=callback.value,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=TaskModalMetadata(task_id=task_id, channel=channel).dump(),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=intro)),
            InputBlock(
                block_id=field.value,
                label=PlainTextObject(text=label),
                hint=PlainTextObject(text=hint),
                optional=optional,
                element=PlainTextInputElement(
                    action_id=Field_.VALUE.value, multiline=True, max_length=INSTRUCTION_LIMIT
                ),
            ),
        ],
    )


def restart_modal(task_id: str, channel: str | None = None) -> View:
    return _modal(
        Callback.TASK_RESTART,
        "Restart with changes",
        "Restart",
        f"`{task_id}` is paused. It goes on with your instruction, which it receives as a "
        "restart, at its next check.",
        Field_.INSTRUCTION,
        "Instruction",
        "What the agent should do differently from here.",
        task_id,
        channel,
        optional=False,
    )


def abandon_modal(task_id: str, channel: str | None = None) -> View:
    return _modal(
        Callback.TASK_ABANDON,
        "Abandon the task",
        "Abandon",
        f"`{task_id}` is killed and will not be completed. Its end user is told, with your "
        "explanation if you give one.",
        Field_.EXPLANATION,
        "Explanation for the end user",
        "One or two sentences the customer will read. Leave empty for a standard notice.",
        task_id,
        channel,
        optional=True,
    )
