"""The review card of a sampled item (CONTRACTS §11): what was done, the output, and
*Looks right* / *Flag* until someone gives the verdict; then who, when, what they said
and what the flag paused, without buttons. And the flag modal: what is wrong, and
whether to pause the task or its agent too.

Pure functions of the review as stored (and the decision it is about) and the time, so a
card comes out the same whenever it is drawn."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from blocks.actions import Action, Callback, Field_, ReviewButtonValue, ReviewModalMetadata
from blocks.card import OUTCOME_LINE, Card
from blocks.text import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    code,
    escape,
    fit,
    pretty_json,
    when,
    who,
)
from bot.records import EscalationRecord, ReviewItem

VERDICT_LINE = {"looks_right": "✅ *Looks right*", "flagged": "🚩 *Flagged*"}
NO_PAUSE = "none"


def review_card(review: ReviewItem, decision: EscalationRecord | None) -> Card:
    """`decision`: the escalation the policy decided, for a review of subject decision."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=fit(_title(review, decision), HEADER_LIMIT))),
        SectionBlock(fields=_facts(review)),
        _section(f"*What was done*\n{_done(review, decision)}"),
        _section(f"*{_output_title(review)}*\n{_output(review, decision)}"),
        DividerBlock(),
        _section(_status(review)),
    ]
    if not review.reviewed:
        blocks.append(_buttons(review))
    blocks.append(_footer(review))
    return Card(blocks=blocks, text=fit(_fallback(review), 3000), truncated=False)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=fit(text, SECTION_LIMIT)))


def _action(decision: EscalationRecord | None) -> dict[str, Any]:
    return (decision.action if decision is not None else None) or {}


def _title(review: ReviewItem, decision: EscalationRecord | None) -> str:
    if review.subject == "decision":
        name = _action(decision).get("name") or "a request"
        outcome = decision.state if decision is not None else "decided"
        return f"🔍 Review: {name} {outcome} by the policy"
    kind = f"{review.task_type} task" if review.task_type else "task"
    return f"🔍 Review: {kind} {review.task_id} finished"


def _facts(review: ReviewItem) -> list[MarkdownTextObject]:
    sampled = f"{review.rate:.0%}" + (f" · rule `{escape(review.rule)}`" if review.rule else "")
    facts = [
        ("Agent", escape(review.agent)),
        ("Task", f"`{escape(review.task_id)}`"),
        ("Type", escape(review.task_type or "-")),
        ("Sampled", sampled),
    ]
    return [MarkdownTextObject(text=fit(f"*{k}*\n{v}", FIELD_LIMIT)) for k, v in facts]


def _done(review: ReviewItem, decision: EscalationRecord | None) -> str:
    if review.subject != "decision":
        return (
            f"*{escape(review.agent)}* finished `{escape(review.task_id)}` and reported it "
            f"completed ({when(review.created_at)})."
        )
    if decision is None:
        return escape(fit(review.summary, 2000))
    action = _action(decision)
    name = escape(str(action.get("name") or "?"))
    args = action.get("args") or {}
    text = (
        f"*{escape(decision.agent)}* asked to run `{name}` (escalation `{decision.id}`, "
        f"{when(decision.created_at)})"
    )
    if args:
        text += ":\n" + code(fit(pretty_json(args), 1800))
    else:
        text += " with no arguments."
    return text + "\n*The agent's reason*: " + escape(fit(decision.reason, 600))


def _output_title(review: ReviewItem) -> str:
    return "Output" if review.subject == "decision" else "Output: its notice for the user"


def _output(review: ReviewItem, decision: EscalationRecord | None) -> str:
    if review.subject != "decision":
        return escape(fit(review.summary, 2500)) or "_(no notice)_"
    if decision is None:
        return "_(the escalation is no longer stored)_"
    head = OUTCOME_LINE.get(decision.state, escape(decision.state))
    rule = f" (rule `{escape(decision.decision_rule)}`)" if decision.decision_rule else ""
    return (
        f"{head} by the policy{rule} at {when(decision.decided_at)}, with no person asked: "
        f"`decision:{decision.id}` told the agent."
    )


def _status(review: ReviewItem) -> str:
    if not review.reviewed:
        return (
            "⏳ Waiting for a verdict: *Looks right*, or *Flag* to say what is wrong (and "
            "pause the task or its agent)."
        )
    line = (
        f"{VERDICT_LINE.get(review.verdict or '', escape(review.verdict or ''))} by "
        f"{who(review.verdict_by)} at {when(review.verdict_at)}"
    )
    if review.verdict_note:
        line += "\n💬 " + escape(fit(review.verdict_note, 1500))
    if review.paused:
        if review.paused.startswith("agent:"):
            agent = escape(review.paused.removeprefix("agent:"))
            line += f"\n⏸ Paused every task of *{agent}* (`{escape(review.paused)}`)"
        else:
            line += f"\n⏸ Paused `{escape(review.paused)}`"
    return line


def _buttons(review: ReviewItem) -> ActionsBlock:
    value = ReviewButtonValue(review_id=review.id).dump()
    return ActionsBlock(
        block_id=f"review:{review.id}",
        elements=[
            ButtonElement(
                text="Looks right",
                action_id=Action.REVIEW_LOOKS_RIGHT.value,
                value=value,
                style="primary",
            ),
            ButtonElement(
                text="Flag", action_id=Action.REVIEW_FLAG.value, value=value, style="danger"
            ),
        ],
    )


def _footer(review: ReviewItem) -> ContextBlock:
    subject = "a policy decision" if review.subject == "decision" else "a finished task"
    text = (
        f"Review `{review.id}` · {subject} · sampled {when(review.created_at)} by its id "
        f"at {review.rate:.0%} · `escbot review {review.id}` from a terminal"
    )
    return ContextBlock(elements=[MarkdownTextObject(text=fit(text, 3000))])


def _fallback(review: ReviewItem) -> str:
    state = f" ({review.verdict})" if review.verdict else ""
    what = "policy decision" if review.subject == "decision" else "finished task"
    return f"Review of a {what}: {review.agent} on {review.task_id}{state}: {review.summary}"


def flag_modal(review: ReviewItem, channel: str | None = None) -> View:
    """What is wrong (required), and a choice to also pause the task or its agent."""
    options = [
        Option(value=NO_PAUSE, text="Pause nothing"),
        Option(value="task", text=fit(f"Pause this task ({review.task_id})", 75)),
        Option(value="agent", text=fit(f"Pause every task of {review.agent}", 75)),
    ]
    subject = (
        f"the policy's decision on escalation `{review.subject_id}`"
        if review.subject == "decision"
        else f"finished task `{escape(review.subject_id)}`"
    )
    return View(
        type="modal",
        callback_id=Callback.REVIEW_FLAG.value,
        title=PlainTextObject(text="Flag"),
        submit=PlainTextObject(text="Flag"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=ReviewModalMetadata(review_id=review.id, channel=channel).dump(),
        blocks=[
            _section(
                f"Review `{review.id}` of {subject}, by *{escape(review.agent)}*\n"
                f"{escape(fit(review.summary, 1500))}"
            ),
            InputBlock(
                block_id=Field_.WRONG.value,
                label=PlainTextObject(text="What is wrong"),
                hint=PlainTextObject(text="Recorded in the audit log and shown on the card."),
                element=PlainTextInputElement(
                    action_id=Field_.VALUE.value, multiline=True, max_length=3000
                ),
            ),
            InputBlock(
                block_id=Field_.PAUSE.value,
                label=PlainTextObject(text="Also"),
                element=RadioButtonsElement(
                    action_id=Field_.VALUE.value, options=options, initial_option=options[0]
                ),
            ),
        ],
    )
