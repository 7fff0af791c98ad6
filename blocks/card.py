"""The escalation card: everything a reviewer needs to decide without leaving Slack.

A pure function of the escalation as stored and the time: the card can be rendered again
at any moment (after a decision, an escalation, a restart) and comes out the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from blocks.actions import Action, ButtonValue
from blocks.text import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    MAX_MESSAGE_BLOCKS,
    SECTION_LIMIT,
    code,
    compact_json,
    duration,
    escape,
    fit,
    pretty_json,
    when,
    who,
)
from bot.edited_args import changes
from bot.policy.model import DEFAULT_LADDER
from bot.records import EscalationRecord

SEVERITY_MARK = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "🔵"}
KIND_TITLE = {"approval": "Approval needed", "exception": "Exception", "review": "Review"}
OUTCOME_LINE = {
    "approved": "✅ *Approved*",
    "rejected": "❌ *Rejected*",
    "terminated": "🛑 *Terminated* (the task is killed)",
    "redirected": "↪️ *Redirected*",
    "expired": "⌛ *Expired*",
}
TOOL_CALLS_SHOWN = 5
EDIT_LINES_SHOWN = 8


@dataclass(frozen=True)
class CardContext:
    """What the card needs beyond the escalation: where it stands in the policy's tiers."""

    next_tier: str | None
    final_action: str
    escalated_to: str | None = None
    first_card_link: str | None = None


@dataclass(frozen=True)
class Card:
    blocks: list[Block]
    text: str
    truncated: bool


def escalation_card(view: EscalationRecord, ctx: CardContext, now: datetime) -> Card:
    cut = _Cutter()
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=fit(_title(view), HEADER_LIMIT), emoji=True)),
        SectionBlock(fields=_facts(view, cut)),
        SectionBlock(text=MarkdownTextObject(text=cut("*Reason*\n" + escape(view.reason)))),
    ]
    if view.action:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=cut(_action(view.action)))))
    context = _context(view.context, cut)
    if context:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=cut(context))))
    blocks.append(DividerBlock())
    blocks.append(_status(view, ctx, now))
    if view.is_open:
        blocks.append(_buttons(view, ctx, truncated=cut.truncated))
    elif cut.truncated:
        blocks.append(_context_button(view))
    blocks.append(_footer(view))
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    return Card(blocks=blocks, text=fit(_fallback(view), 3000), truncated=cut.truncated)


class _Cutter:
    """Fits texts into a section and remembers whether anything was cut."""

    def __init__(self) -> None:
        self.truncated = False

    def __call__(self, text: str, limit: int = SECTION_LIMIT) -> str:
        if len(text) > limit:
            self.truncated = True
            if text.count("```") % 2 == 0 and text.endswith("```"):
                return fit(text[:-3], limit - 3) + "```"
        return fit(text, limit)

    def short(self, text: str, limit: int) -> str:
        """A shortened excerpt inside a longer text: full context shows the whole."""
        if len(text) > limit:
            self.truncated = True
        return fit(text, limit)


def _title(view: EscalationRecord) -> str:
    mark = SEVERITY_MARK.get(view.severity, "⚪")
    subject = view.task_type or (view.action or {}).get("name") or view.task_id
    return f"{mark} {KIND_TITLE.get(view.kind, view.kind.title())}: {subject}"


def _facts(view: EscalationRecord, cut: _Cutter) -> list[MarkdownTextObject]:
    confidence = "-" if view.confidence is None else f"{view.confidence:.0%}"
    facts = [
        ("Agent", escape(view.agent)),
        ("Task", f"`{view.task_id}`"),
        ("Type", escape(view.task_type or "-")),
        ("Severity", f"{SEVERITY_MARK.get(view.severity, '')} {view.severity}"),
        ("Confidence", confidence),
        ("Tier", escape(view.tier)),
    ]
    return [MarkdownTextObject(text=cut(f"*{k}*\n{v}", FIELD_LIMIT)) for k, v in facts]


def _action(action: dict[str, Any]) -> str:
    name = escape(str(action.get("name", "?")))
    args = action.get("args") or {}
    text = f"*Proposed action*: `{name}`"
    return text + ("\n" + code(pretty_json(args)) if args else " (no arguments)")


def _context(context: dict[str, Any], cut: _Cutter) -> str:
    lines = []
    trigger = context.get("trigger")
    if isinstance(trigger, dict) and trigger.get("trigger"):
        said = f"{trigger.get('measure')} is {trigger.get('value')}"
        compared = str(trigger.get("comparator", "")).replace("_", " ")
        lines.append(
            f"• ⚡ *Trigger* `{escape(str(trigger['trigger']))}`: {escape(said)}, "
            f"{escape(compared)} {escape(str(trigger.get('threshold')))}"
            f" ({escape(str(trigger.get('scope')))} {escape(str(trigger.get('subject')))};"
            f" then {escape(', '.join(str(t) for t in trigger.get('then') or []))})"
        )
    if context.get("policy_rule"):
        lines.append(f"• *Policy rule*: `{escape(str(context['policy_rule']))}`")
    calls = context.get("tool_calls") or []
    if calls:
        lines.append(f"• *Tool calls* ({len(calls)}):")
        for number, call in enumerate(calls[:TOOL_CALLS_SHOWN], start=1):
            name = escape(str(call.get("name", "?")))
            args = cut.short(compact_json(call.get("args") or {}), 300)
            result = call.get("result")
            shown = "" if result is None else " → " + escape(cut.short(str(result), 300))
            lines.append(f"   {number}. `{name}`({escape(args)}){shown}")
        if len(calls) > TOOL_CALLS_SHOWN:
            cut.truncated = True
            lines.append(f"   … and {len(calls) - TOOL_CALLS_SHOWN} more (full context)")
    if context.get("source"):
        lines.append("• *Source*: " + escape(cut.short(str(context["source"]), 800)))
    if context.get("state"):
        state = cut.short(compact_json(context["state"]), 300)
        lines.append(f"• *Agent state*: `{escape(state)}`")
    if not lines:
        return ""
    return "*Context the agent used*\n" + "\n".join(lines)


def _status(view: EscalationRecord, ctx: CardContext, now: datetime) -> Block:
    lines: list[str] = []
    if view.policy_note and view.is_open:
        lines.append(f"🧭 {escape(fit(view.policy_note, 500))}: a person decides")
    lines += _edits_and_approvals(view)
    if view.acknowledged_by:
        lines.append(
            f"👀 Acknowledged by {who(view.acknowledged_by)} at {when(view.acknowledged_at)}"
        )
    if view.is_open:
        if view.state == "open" and view.next_action_at is not None:
            left = duration(view.next_action_at - now)
            if ctx.next_tier:
                lines.append(
                    f"⏱ Not acknowledged by {when(view.next_action_at)} (in {left}): "
                    f"escalates to *{escape(ctx.next_tier)}*"
                )
            else:
                then = {
                    "reject": "it expires (as a rejection)",
                    "terminate": "it expires and the task is killed",
                    "none": "it stays open",
                }.get(ctx.final_action, "")
                lines.append(
                    f"⏱ Last tier: not decided by {when(view.next_action_at)} (in {left}), {then}"
                )
    else:
        lines.append(_decided(view))
    if ctx.escalated_to:
        where = escape(ctx.escalated_to)
        lines.append(
            f"⬆️ Escalated to *{where}*: decide here or there"
            if view.is_open
            else f"⬆️ It had been escalated to *{where}*"
        )
    if ctx.first_card_link:
        lines.append(f"↩️ Escalated from <{ctx.first_card_link}|the first card>")
    paging = _paging(view)
    if paging:
        lines.append(paging)
    return SectionBlock(text=MarkdownTextObject(text=fit("\n".join(lines), SECTION_LIMIT)))


def _edits_and_approvals(view: EscalationRecord) -> list[str]:
    lines = []
    if view.edited_args is not None:
        changed = changes(view.proposed_args, view.edited_args) or ["no change"]
        shown = [escape(line) for line in changed[:EDIT_LINES_SHOWN]]
        if len(changed) > EDIT_LINES_SHOWN:
            shown.append(f"… and {len(changed) - EDIT_LINES_SHOWN} more")
        lines.append(
            f"✏️ Arguments edited by {who(view.edited_by)}:\n"
            + "\n".join(f"   • `{line}`" for line in shown)
        )
    needed = view.approvals_needed
    if needed > 1 and (view.is_open or view.approvals):
        given = len(view.approvals)
        names = ", ".join(who(person) for person in view.approvals)
        if not view.is_open:
            lines.append(f"👥 {given} of {needed} approvals: {names}")
        elif given:
            lines.append(f"👥 {given} of {needed} approvals so far: {names}")
        else:
            lines.append(f"👥 Needs {needed} approvals from different people")
    return lines


PAGED = {
    "trigger": "📟 PagerDuty paged (dedup key `{id}`)",
    "acknowledge": "📟 PagerDuty page acknowledged",
    "resolve": "📟 PagerDuty page resolved",
}


def _paging(view: EscalationRecord) -> str | None:
    if view.page_wanted is None:
        return None
    if view.page_sent == view.page_wanted:
        return PAGED[view.page_wanted].format(id=view.id)
    if view.page_error:
        return (
            f"⚠️ Paging PagerDuty is failing ({escape(fit(view.page_error, 200))}): "
            f"{view.page_attempts} attempt(s), retrying"
        )
    return f"📟 Sending PagerDuty the {view.page_wanted}…"


def _decided(view: EscalationRecord) -> str:
    head = OUTCOME_LINE.get(view.state, view.state)
    if view.state == "expired":
        line = f"{head}: nobody decided in time ({when(view.decided_at)})"
    else:
        line = f"{head} by {who(view.decided_by)} at {when(view.decided_at)}"
    if view.decided_at is not None:
        line += f", {duration(view.decided_at - view.created_at)} after the escalation"
    if view.comment:
        line += "\n💬 " + escape(fit(view.comment, 1500))
    if view.instruction:
        line += "\n➡️ " + escape(fit(view.instruction, 1500))
    return line


def _button(label: str, action: Action, view: EscalationRecord, **kwargs: Any) -> ButtonElement:
    value = ButtonValue(escalation_id=view.id).dump()
    return ButtonElement(text=label, action_id=action.value, value=value, **kwargs)


def _buttons(view: EscalationRecord, ctx: CardContext, *, truncated: bool) -> ActionsBlock:
    elements = []
    if view.state == "open":
        elements.append(_button("Acknowledge", Action.ACKNOWLEDGE, view))
    approve = "Approve as edited" if view.edited_args is not None else "Approve"
    if view.approvals_needed > 1:
        approve += f" ({len(view.approvals)} of {view.approvals_needed})"
    elements.append(_button(approve, Action.APPROVE, view, style="primary"))
    if view.kind == "approval" and view.action:
        elements.append(_button("Edit & approve", Action.EDIT, view))
    elements += [
        _button("Reject", Action.REJECT, view),
        _button("Redirect", Action.REDIRECT, view),
        _button(
            "Terminate",
            Action.TERMINATE,
            view,
            style="danger",
            confirm=ConfirmObject(
                title="Terminate this task?",
                text=fit(
                    f"This rejects the escalation and kills `{view.task_id}`: the agent "
                    "stops at its next check and stays stopped until revived.",
                    300,
                ),
                confirm="Terminate",
                deny="Cancel",
                style="danger",
            ),
        ),
    ]
    if ctx.next_tier:
        elements.append(_button(f"Escalate to {fit(ctx.next_tier, 40)}", Action.ESCALATE, view))
    if truncated:
        elements.append(_button("Full context", Action.FULL_CONTEXT, view))
    return ActionsBlock(block_id=f"escalation:{view.id}"[:255], elements=elements)


def _context_button(view: EscalationRecord) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"context:{view.id}"[:255],
        elements=[_button("Full context", Action.FULL_CONTEXT, view)],
    )


def _footer(view: EscalationRecord) -> ContextBlock:
    text = (
        f"Escalation `{view.id}` · {view.kind} · opened {when(view.created_at)} · "
        f"policy {view.policy_version}"
    )
    if view.route or (view.ladder and view.ladder != DEFAULT_LADDER):
        text += f" · route `{escape(view.route or 'default')}` → ladder {escape(view.ladder or '')}"
    return ContextBlock(elements=[MarkdownTextObject(text=fit(text, 3000))])


def _fallback(view: EscalationRecord) -> str:
    state = "" if view.is_open else f" ({view.state})"
    return (
        f"{KIND_TITLE.get(view.kind, view.kind)}: {view.agent} on {view.task_id} "
        f"[{view.severity}]{state}: {view.reason}"
    )
