"""`/agent` text → a command, or a message saying what is wrong with it."""

from __future__ import annotations

import html
from dataclasses import dataclass

from bot.errors import InvalidId
from bot.ids import check_task_id

ALL = "all"
VERBS = ("kill", "revive", "pause", "resume", "redirect", "status", "list", "help")
SYNTAX = {
    "kill": "/agent kill <task_id|all> [reason…]",
    "revive": "/agent revive <task_id|all>",
    "pause": "/agent pause <task_id> [reason…]",
    "resume": "/agent resume <task_id>",
    "redirect": "/agent redirect <task_id> <instruction…>",
    "status": "/agent status <task_id>",
    "list": "/agent list",
    "help": "/agent help",
}


class CommandError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    verb: str
    target: str | None = None
    text: str | None = None

    @property
    def everything(self) -> bool:
        return self.target == ALL


def parse(text: str | None) -> Command:
    words = html.unescape(text or "").strip().split(None, 2)
    if not words:
        return Command("help")
    verb = words[0].lower()
    if verb not in VERBS:
        raise CommandError(f"unknown command `{words[0][:40]}`")
    if verb in {"help", "list"}:
        if len(words) > 1:
            raise CommandError(f"`{verb}` takes no arguments: `{SYNTAX[verb]}`")
        return Command(verb)
    if len(words) < 2:
        raise CommandError(f"`{verb}` needs a task id: `{SYNTAX[verb]}`")
    target, rest = words[1], (words[2].strip() if len(words) > 2 else None)
    if target.lower() == ALL and verb in {"kill", "revive"}:
        target = ALL
    else:
        try:
            check_task_id(target)
        except InvalidId as exc:
            raise CommandError(str(exc)) from None
    if verb in {"revive", "resume", "status"} and rest:
        raise CommandError(f"`{verb}` takes only a task id: `{SYNTAX[verb]}`")
    if verb == "redirect" and not rest:
        raise CommandError(f"`redirect` needs an instruction: `{SYNTAX[verb]}`")
    return Command(verb, target, rest or None)
