"""Replies to `/agent` and announcements in the first tier's channel."""

from __future__ import annotations

from dataclasses import dataclass
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

from blocks.actions import Action
from blocks.recovery import pause_announcement
from blocks.text import MAX_MESSAGE_BLOCKS, SECTION_LIMIT, escape, fit, when, who
from bot.records import AuditAction, AuditRecord, Overview, TaskStatus
from bot.summaries import Section, overview_sections, status_sections, task_state
from bot.verbs import verbs_for

AGENT_RULE = (
    "`kill`, `revive`, `pause`, `resume` and `status` take `agent:<name>` for every task of "
    "an agent."
)
TASK_ID_RULE = "Task ids: letters, digits and `. _ : -`, at most 128 characters."


@dataclass(frozen=True)
class Message:
    blocks: list[Block]
    text: str


def usage(problem: str | None = None) -> str:
    lines = ["*`/agent` commands*"]
    for verb in verbs_for("slash"):
        lines.append(f"• `{verb.syntax()}`: {verb.summary} ({verb.who})")
        if verb.everything:
            lines.append(f"• `{verb.syntax(everything=True)}`: {verb.everything} (admin)")
    lines.append(AGENT_RULE)
    lines.append(TASK_ID_RULE)
    return (f"⚠️ {problem}\n\n" if problem else "") + "\n".join(lines)


class SlackStyle:
    """mrkdwn: code spans, mentions, dates in each reader's own time zone."""

    def code(self, text: str) -> str:
        return f"`{text}`"

    def who(self, actor: str | None) -> str:
        return who(actor)

    def when(self, moment: datetime | None) -> str:
        return when(moment)

    def text(self, text: str, limit: int) -> str:
        return escape(fit(text, limit))


SLACK = SlackStyle()


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=fit(text, SECTION_LIMIT)))


def _blocks(sections: list[Section]) -> list[Block]:
    blocks: list[Block] = []
    notes = []
    for section in sections:
        body = "\n".join(section.lines)
        if section.note:
            notes.append(f"⚠️ *{section.title}*: {body}")
        else:
            blocks.append(_section(f"*{section.title[:1].upper()}{section.title[1:]}*\n{body}"))
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fit("\n".join(notes), 3000))]))
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    return blocks


def status_message(status: TaskStatus) -> Message:
    headline = f"{status.task_id}: {task_state(status)}"
    header = HeaderBlock(text=PlainTextObject(text=fit(headline, 150)))
    return Message([header, *_blocks(status_sections(status, SLACK))], headline)


def overview_message(overview: Overview) -> Message:
    text = f"{len(overview.open_escalations)} open escalations, {len(overview.controls)} active"
    return Message(_blocks(overview_sections(overview, SLACK)), text)


def announcement(record: AuditRecord) -> Message | None:
    """What the first tier's channel is told about an audit row, if anything."""
    actor = who(record.actor)
    task = f"`{record.task_id}`"
    reason = f": {escape(fit(record.reason, 500))}" if record.reason else ""
    detail = record.detail or {}
    if record.action == AuditAction.KILL:
        return _plain(f"🛑 {task} killed by {actor}{reason}", f"{record.task_id} killed")
    if record.action == AuditAction.PAUSE and record.task_id:
        return Message(*pause_announcement(record))
    if record.action == AuditAction.RESTART:
        return _plain(
            f"🔁 {task} restarted by {actor} with new instructions{reason}",
            f"{record.task_id} restarted",
        )
    if record.action == AuditAction.ABANDON:
        return _plain(
            f"🗑️ {task} abandoned by {actor}: killed, and its end user is told"
            f"{': ' + escape(fit(str(detail['notice']), 500)) if detail.get('notice') else ''}",
            f"{record.task_id} abandoned",
        )
    if record.action == AuditAction.KILL_ALL:
        return _plain(
            f"🛑🛑 *Every task is killed* (`kill:all`) by {actor}{reason}", "all tasks killed"
        )
    if record.action == AuditAction.TERMINATE:
        return _plain(
            f"🛑 {task} terminated by {actor} (escalation `{record.escalation_id}`){reason}",
            f"{record.task_id} terminated",
        )
    if record.action == AuditAction.EXPIRE and detail.get("on_final_timeout") == "terminate":
        return _plain(
            f"🛑 {task} terminated: escalation `{record.escalation_id}` expired with nobody "
            "deciding (on_final_timeout: terminate)",
            f"{record.task_id} terminated",
        )
    if record.action == AuditAction.REVIVE and record.task_id == "all":
        if detail.get("step") == "requested":
            return Message(
                [
                    _section(
                        f"⚠️ {actor} asks to lift `kill:all`. It stays until a second, "
                        "different admin confirms (here, or `/agent revive all`)."
                    ),
                    ActionsBlock(
                        elements=[
                            ButtonElement(
                                text="Confirm revive all",
                                action_id=Action.CONFIRM_REVIVE_ALL.value,
                                value="{}",
                                style="danger",
                            )
                        ]
                    ),
                ],
                "revive all requested",
            )
        return _plain(
            f"▶️ `kill:all` lifted: asked by {who(detail.get('requested_by'))}, "
            f"confirmed by {actor}",
            "kill all lifted",
        )
    if record.action == AuditAction.REVIVE:
        return _plain(f"▶️ {task} revived by {actor}", f"{record.task_id} revived")
    if record.action == AuditAction.REDIS_FAILED:
        return _plain(
            f"⚠️ Redis is unreachable: {task} ({escape(', '.join(detail.get('keys', [])))}) is "
            "recorded but agents cannot see it yet. It is written as soon as Redis is back.",
            "Redis unreachable",
        )
    if record.action == AuditAction.TRIGGER:
        done = ", ".join(str(d) for d in detail.get("done") or []) or "nothing new"
        return _plain(
            f"⚡ Trigger `{escape(str(detail.get('trigger')))}` fired for "
            f"`{escape(str(detail.get('subject')))}`: {escape(fit(record.reason or '', 500))} → "
            f"{escape(done)}",
            f"trigger {detail.get('trigger')} fired",
        )
    if record.action == AuditAction.POLICY_CHANGED:
        return _plain(
            f"📜 The policy changed: `{escape(str(detail.get('old')))}` → "
            f"`{escape(str(detail.get('new')))}`. Open escalations keep their deadlines.",
            "policy changed",
        )
    if record.action == AuditAction.POLICY_REFUSED:
        return _plain(
            f"⚠️ The policy file was refused: {escape(fit(record.reason or '', 1500))}",
            "policy file refused",
        )
    if record.action == AuditAction.REDIS_RESTORED:
        return _plain(f"✅ Redis is back: {escape(record.reason or '')}", "Redis restored")
    return None


def _plain(text: str, fallback: str) -> Message:
    return Message([_section(text)], fallback)


MERGE_LIMIT = 40


def merge_announcements(messages: list[Message]) -> list[Message]:
    """Consecutive plain announcements become one message (at most MERGE_LIMIT lines);
    one with buttons stays a message of its own, in its place."""
    merged: list[Message] = []
    run: list[Message] = []

    def flush() -> None:
        if len(run) == 1:
            merged.append(run[0])
        elif run:
            blocks: list[Block] = [block for message in run for block in message.blocks]
            merged.append(
                Message(
                    blocks,
                    f"{len(run)} announcements: "
                    + "; ".join(message.text for message in run)[:2900],
                )
            )
        run.clear()

    for message in messages:
        if all(isinstance(block, SectionBlock) for block in message.blocks):
            run.append(message)
            if len(run) == MERGE_LIMIT:
                flush()
        else:
            flush()
            merged.append(message)
    flush()
    return merged
