"""Replies to `/agent` and announcements in the first tier's channel."""

from __future__ import annotations

from dataclasses import dataclass

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
from blocks.text import MAX_MESSAGE_BLOCKS, SECTION_LIMIT, escape, fit, when, who
from bot.records import AuditAction, AuditRecord, ControlRecord, EscalationRecord, Overview, TaskStatus

USAGE = """*`/agent` commands*
• `/agent kill <task_id> [reason…]`: stop a task at its next check (operator)
• `/agent kill all [reason…]`: stop every task at once (admin)
• `/agent revive <task_id>`: lift a kill (operator)
• `/agent revive all`: lift `kill all` once a second, different admin confirms (admin)
• `/agent pause <task_id> [reason…]` · `/agent resume <task_id>` (operator)
• `/agent redirect <task_id> <instruction…>`: send the agent a new instruction (operator)
• `/agent status <task_id>`: kill/pause state, escalations, last audit rows
• `/agent list`: open escalations, active kills and pauses
Task ids: letters, digits and `. _ : -`, at most 128 characters."""


@dataclass(frozen=True)
class Message:
    blocks: list[Block]
    text: str


def usage(problem: str | None = None) -> str:
    return (f"⚠️ {problem}\n\n" if problem else "") + USAGE


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=fit(text, SECTION_LIMIT)))


def _control_line(label: str, control: ControlRecord | None, idle: str) -> str:
    if control is None:
        return f"*{label}*: {idle}"
    return (
        f"*{label}*: since {when(control.set_at)} by {who(control.set_by)}: "
        f"{escape(fit(control.reason, 300))}"
    )


def _escalation_line(esc: EscalationRecord) -> str:
    return (
        f"`{esc.id}` · `{esc.task_id}` · *{esc.state}* · {esc.severity} · tier {esc.tier} · "
        f"{escape(fit(esc.reason, 120))}"
    )


def status_message(status: TaskStatus) -> Message:
    stopped = "🛑 stopped" if status.stopped else ("⏸ paused" if status.paused else "▶️ running")
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=fit(f"{status.task_id}: {stopped}", 150))),
        _section(
            "\n".join(
                [
                    _control_line("Kill", status.killed, "not killed"),
                    _control_line("Kill all", status.killed_all, "not active"),
                    _control_line("Pause", status.paused, "not paused"),
                ]
            )
        ),
    ]
    lines = [_escalation_line(esc) for esc in status.escalations[:10]]
    blocks.append(_section("*Escalations*\n" + ("\n".join(lines) if lines else "none")))
    audit = [
        f"#{r.seq} {when(r.at)} {who(r.actor)} *{r.action}* {escape(fit(r.reason or '', 120))}"
        for r in status.recent
    ]
    blocks.append(_section("*Last audit rows*\n" + ("\n".join(audit) if audit else "none")))
    return Message(blocks, f"{status.task_id}: {stopped}")


def overview_message(overview: Overview) -> Message:
    opened = [_escalation_line(esc) for esc in overview.open_escalations[:20]]
    more = len(overview.open_escalations) - len(opened)
    controls = []
    for control in overview.controls[:30]:
        name = "kill:all" if control.target == "all" else f"{control.kind}:{control.target}"
        waiting = ""
        if control.revive_requested_by:
            waiting = f" (revive asked by {who(control.revive_requested_by)}, awaiting a 2nd admin)"
        controls.append(
            f"`{name}` since {when(control.set_at)} by {who(control.set_by)}: "
            f"{escape(fit(control.reason, 120))}{waiting}"
        )
    blocks: list[Block] = [
        _section(
            f"*Open escalations ({len(overview.open_escalations)})*\n"
            + ("\n".join(opened) if opened else "none")
            + (f"\n… and {more} more" if more > 0 else "")
        ),
        _section(
            f"*Active kills and pauses ({len(overview.controls)})*\n"
            + ("\n".join(controls) if controls else "none")
        ),
    ]
    notes = []
    if overview.pending_effects:
        notes.append(
            f"⚠️ {overview.pending_effects} change(s) waiting for Redis: written when it is back"
        )
    if overview.rejected:
        latest = overview.rejected[0]
        notes.append(
            f"{len(overview.rejected)} recent escalation entries were rejected; latest: "
            f"{escape(fit(latest.reason, 200))} (`escbot list` shows them)"
        )
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fit("\n".join(notes), 3000))]))
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    text = f"{len(overview.open_escalations)} open escalations, {len(overview.controls)} active"
    return Message(blocks, text)


def announcement(record: AuditRecord) -> Message | None:
    """What the first tier's channel is told about an audit row, if anything."""
    actor = who(record.actor)
    task = f"`{record.task_id}`"
    reason = f": {escape(fit(record.reason, 500))}" if record.reason else ""
    detail = record.detail or {}
    if record.action == AuditAction.KILL:
        return _plain(f"🛑 {task} killed by {actor}{reason}", f"{record.task_id} killed")
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
