"""What `status` and `list` say, written once for every surface. A summary is a list of
sections of lines; a `Style` says how a surface marks code, names and times (Slack's
mrkdwn in blocks/messages.py, plain text for the CLI here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.keys import ALL
from bot.records import (
    ControlRecord,
    EscalationRecord,
    EscalationShown,
    LiveTask,
    Overview,
    TaskStatus,
)

OPEN_SHOWN = 20
CONTROLS_SHOWN = 30
ESCALATIONS_SHOWN = 10
LIVE_SHOWN = 30


class Style(Protocol):
    def code(self, text: str) -> str: ...
    def who(self, actor: str | None) -> str: ...
    def when(self, moment: datetime | None) -> str: ...
    def text(self, text: str, limit: int) -> str: ...


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]
    note: bool = False  # small print (Slack shows it as context)


class PlainStyle:
    """A terminal's: nothing escaped, times in UTC."""

    def code(self, text: str) -> str:
        return text

    def who(self, actor: str | None) -> str:
        return actor or "someone"

    def when(self, moment: datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"

    def text(self, text: str, limit: int) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"


def task_state(status: TaskStatus) -> str:
    if status.stopped:
        return "stopped"
    if status.paused or status.paused_agent:
        return "paused"
    return status.live.state if status.live is not None else "not stopped"


def control_name(control: ControlRecord) -> str:
    return "kill:all" if control.target == ALL else f"{control.kind}:{control.target}"


def _control(style: Style, label: str, control: ControlRecord | None, idle: str) -> str:
    if control is None:
        return f"{label}: {idle}"
    return (
        f"{label}: ACTIVE since {style.when(control.set_at)} by {style.who(control.set_by)}: "
        f"{style.text(control.reason, 300)}"
    )


def _escalation(style: Style, esc: EscalationRecord) -> str:
    return (
        f"{style.code(esc.id)} · {style.code(esc.task_id)} · {esc.state} · {esc.severity} · "
        f"tier {esc.tier} · {style.text(esc.reason, 120)}"
    )


def _live(style: Style, task: LiveTask) -> str:
    step = f" · step {style.text(task.step, 60)}" if task.step else ""
    where = f" · {task.host}:{task.pid}" if task.host else ""
    state = "lost (its guard stopped reporting)" if task.lost else task.state
    return (
        f"{style.code(task.task_id)} · {style.text(task.agent, 60)} · {state}{step} · "
        f"last seen {style.when(task.last_seen)}{where}"
    )


def status_sections(status: TaskStatus, style: Style) -> list[Section]:
    controls = [
        _control(style, "kill", status.killed, "not killed"),
        _control(style, "kill all", status.killed_all, "not active"),
        _control(style, "pause", status.paused, "not paused"),
    ]
    if status.killed_agent is not None:
        controls.append(_control(style, "kill agent", status.killed_agent, ""))
    if status.paused_agent is not None:
        controls.append(_control(style, "pause agent", status.paused_agent, ""))
    if status.live is not None:
        controls.append("guard: " + _live(style, status.live))
    elif status.fleet_error:
        controls.append(f"guard: unknown (Redis: {style.text(status.fleet_error, 200)})")
    else:
        controls.append("guard: not seen in the last 24 h")
    shown = status.escalations[:ESCALATIONS_SHOWN]
    audit = tuple(
        f"#{r.seq} {style.when(r.at)} {style.who(r.actor)} {r.action} "
        f"{style.text(r.reason or '', 120)}"
        for r in status.recent
    )
    return [
        Section(f"task {status.task_id}: {task_state(status)}", tuple(controls)),
        Section("escalations", tuple(_escalation(style, esc) for esc in shown) or ("none",)),
        Section("recent audit", audit or ("none",)),
    ]


def overview_sections(overview: Overview, style: Style) -> list[Section]:
    opened = [_escalation(style, esc) for esc in overview.open_escalations[:OPEN_SHOWN]]
    more = len(overview.open_escalations) - len(opened)
    if more > 0:
        opened.append(f"… and {more} more")
    controls = []
    for control in overview.controls[:CONTROLS_SHOWN]:
        waiting = ""
        if control.revive_requested_by:
            waiting = (
                f" (revive asked by {style.who(control.revive_requested_by)}, "
                "awaiting a second admin)"
            )
        controls.append(
            f"{style.code(control_name(control))} since {style.when(control.set_at)} by "
            f"{style.who(control.set_by)}: {style.text(control.reason, 120)}{waiting}"
        )
    live = [_live(style, task) for task in overview.live_tasks[:LIVE_SHOWN]]
    if len(overview.live_tasks) > LIVE_SHOWN:
        live.append(f"… and {len(overview.live_tasks) - LIVE_SHOWN} more")
    if overview.fleet_error:
        live = [f"unknown: Redis cannot be read ({style.text(overview.fleet_error, 200)})"]
    sections = [
        Section(f"live tasks: {len(overview.live_tasks)}", tuple(live) or ("none",)),
        Section(f"open escalations: {len(overview.open_escalations)}", tuple(opened) or ("none",)),
        Section(f"active kills and pauses: {len(overview.controls)}", tuple(controls) or ("none",)),
    ]
    if overview.lost_tasks:
        sections.append(
            Section(
                f"lost tasks (no report for 30 s, in the last hour): {len(overview.lost_tasks)}",
                tuple(_live(style, task) for task in overview.lost_tasks[:LIVE_SHOWN]),
                note=True,
            )
        )
    if overview.reviews:
        sections.append(
            Section(
                f"sampled for review: {len(overview.reviews)}",
                tuple(
                    f"{style.code(str(item.id))}: "
                    f"{'decided by the policy' if item.subject == 'decision' else 'finished'} "
                    f"{style.code(item.subject_id)} ({item.rate:.0%} sampled"
                    + (f", rule {item.rule}" if item.rule else "")
                    + f"): {style.text(item.summary, 160)}"
                    for item in overview.reviews
                ),
            )
        )
    if overview.pending_effects:
        sections.append(
            Section(
                f"changes waiting for Redis: {overview.pending_effects}",
                ("written when Redis is reachable; `escbot reconcile` retries now",),
                note=True,
            )
        )
    if overview.rejected:
        sections.append(
            Section(
                f"rejected escalation entries (newest first): {len(overview.rejected)}",
                tuple(
                    f"{entry.stream_id} {style.when(entry.received_at)} "
                    f"{style.text(entry.reason, 200)}"
                    for entry in overview.rejected
                ),
                note=True,
            )
        )
    return sections


def shown_sections(shown: EscalationShown, style: Style) -> list[Section]:
    """`escbot show`: the escalation as stored, then (with --raw) as its agent sent it."""
    esc = shown.escalation
    facts = (
        f"task {style.code(esc.task_id)} · agent {esc.agent} · {esc.kind} · {esc.severity}",
        f"state {esc.state} · tier {esc.tier} · opened {style.when(esc.created_at)}",
        f"decided by {style.who(esc.decided_by)} at {style.when(esc.decided_at)}"
        if esc.decided_by
        else "not decided",
        f"reason: {esc.reason}",
    )
    sections = [
        Section(f"escalation {esc.id} (as stored: redacted)", facts),
        Section("action", _json_lines(esc.action)),
        Section("context", _json_lines(esc.context)),
    ]
    if shown.raw is not None:
        title = f"as the agent sent it (audit row #{shown.audit_seq} records this look)"
        sections.append(Section(title, _json_lines(shown.raw)))
    return sections


def _json_lines(value: Any) -> tuple[str, ...]:
    if not value:
        return ("none",)
    return tuple(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).splitlines())


def plain(sections: list[Section]) -> str:
    """Sections as a terminal shows them: a title line, then indented lines."""
    lines: list[str] = []
    for section in sections:
        lines.append(section.title)
        lines.extend(f"  {line}" for line in section.lines)
    return "\n".join(lines)
