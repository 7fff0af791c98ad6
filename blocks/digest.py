"""The digest: many low and medium escalations of one channel in one message, grouped by
agent and reason with counts, each reachable by a button that opens its card in a modal.

Pure functions of the escalations as they are now: a digest is drawn again whenever one
of its escalations changes, so it never shows as waiting what was decided meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from blocks.actions import Action, ButtonValue, ModalMetadata
from blocks.card import SEVERITY_MARK, Card
from blocks.text import MAX_MESSAGE_BLOCKS, escape, fit, when
from bot.records import EscalationRecord

BUTTONS_PER_BLOCK = 25  # Slack's limit for an actions block
MAX_ITEMS = 100  # escalations in one digest
REASON_SHOWN = 150
STATE_MARK = {
    "acknowledged": "👀",
    "approved": "✅",
    "rejected": "❌",
    "terminated": "🛑",
    "redirected": "↪️",
    "expired": "⌛",
}


def _group_key(view: EscalationRecord) -> tuple[str, str]:
    return view.agent, view.reason


def _groups(items: Sequence[EscalationRecord]) -> dict[tuple[str, str], list[EscalationRecord]]:
    groups: dict[tuple[str, str], list[EscalationRecord]] = {}
    for view in items:
        groups.setdefault(_group_key(view), []).append(view)
    return groups


def _blocks_for(sizes: Sequence[int]) -> int:
    """Blocks a digest of groups of these sizes takes: a header, a context line, and
    each group's section with its rows of buttons."""
    return 2 + sum(1 + -(-size // BUTTONS_PER_BLOCK) for size in sizes)


def digest_capacity(items: Sequence[EscalationRecord]) -> int:
    """How many of `items`, in order, fit in one digest (at least one)."""
    sizes: dict[tuple[str, str], int] = {}
    taken = 0
    for view in items[:MAX_ITEMS]:
        key = _group_key(view)
        trial = dict(sizes)
        trial[key] = trial.get(key, 0) + 1
        if _blocks_for(list(trial.values())) > MAX_MESSAGE_BLOCKS:
            break
        sizes = trial
        taken += 1
    return max(taken, 1)


def _label(view: EscalationRecord, tier: str | None) -> str:
    mark = STATE_MARK.get(view.state, SEVERITY_MARK.get(view.severity, ""))
    label = f"{mark} {view.task_id}"
    if view.is_open and tier is not None and view.tier != tier:
        label += f" → {view.tier}"
    return fit(label, 75)


def _open_button(view: EscalationRecord, index: int, tier: str | None) -> ButtonElement:
    return ButtonElement(
        text=_label(view, tier),
        action_id=f"{Action.OPEN_CARD.value}.{index}",
        value=ButtonValue(escalation_id=view.id).dump(),
    )


def _group_line(agent: str, reason: str, views: Sequence[EscalationRecord]) -> str:
    waiting = sum(1 for view in views if view.state == "open")
    line = f"*{escape(fit(agent, 80))}* · {escape(fit(reason, REASON_SHOWN))} — *{len(views)}*"
    if waiting != len(views):
        line += f" ({waiting} waiting)"
    return line


def digest_message(
    items: Sequence[EscalationRecord],
    *,
    tier: str | None,
    deadline: datetime | None,
) -> Card:
    """The digest of `items` (as they are now) posted for `tier`'s channel; `deadline`,
    when the first of them must be acknowledged."""
    waiting = sum(1 for view in items if view.state == "open")
    title = f"📬 {len(items)} escalations, low and medium"
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fit(title, 150), emoji=True))]
    index = 0
    for (agent, reason), views in _groups(items).items():
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_group_line(agent, reason, views))))
        for start in range(0, len(views), BUTTONS_PER_BLOCK):
            row = views[start : start + BUTTONS_PER_BLOCK]
            buttons = [_open_button(view, index + offset, tier) for offset, view in enumerate(row)]
            index += len(row)
            blocks.append(ActionsBlock(elements=buttons))
    if waiting and deadline is not None:
        status = f"⏱ {waiting} waiting: acknowledge by {when(deadline)}, or they escalate"
    elif waiting:
        status = f"⏱ {waiting} waiting"
    else:
        status = "✅ Nothing waiting: every one of them is handled"
    status += " · a button opens the escalation's card"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=status)]))
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    text = f"{len(items)} escalations (low and medium), {waiting} waiting"
    return Card(blocks=blocks, text=text, truncated=False)


def card_modal(view: EscalationRecord, card: Card, channel: str | None = None) -> View:
    """An escalation's card in a modal, opened from a digest (in `channel`): its buttons
    work as on the card itself."""
    return View(
        type="modal",
        title=PlainTextObject(text="Escalation"),
        close=PlainTextObject(text="Close"),
        private_metadata=ModalMetadata(escalation_id=view.id, channel=channel).dump(),
        blocks=list(card.blocks),
    )
