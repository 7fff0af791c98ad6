"""`/agent` text → a command, or a message saying what is wrong with it. The grammar
comes from the verb table (bot/verbs.py): `<verb> [target] [text…]`."""

from __future__ import annotations

import html
from dataclasses import dataclass

from bot.errors import InvalidId
from bot.ids import check_escalation_id, check_target, check_task_id
from bot.keys import ALL
from bot.verbs import Request, Verb, verbs_for

HELP = "help"
SLASH_VERBS = {verb.name: verb for verb in verbs_for("slash")}
TARGET_NAME = {"task": "a task id", "task_or_all": "a task id", "escalation": "an escalation id"}


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

    def request(self, actor: str) -> Request:
        return Request(self.verb, actor, self.target, self.text)


def syntax(verb: str) -> str:
    return "/agent help" if verb == HELP else SLASH_VERBS[verb].syntax()


def parse(text: str | None) -> Command:
    words = html.unescape(text or "").strip().split(None, 2)
    if not words:
        return Command(HELP)
    name = words[0].lower()
    if name == HELP or (name in SLASH_VERBS and SLASH_VERBS[name].target == "none"):
        if len(words) > 1:
            raise CommandError(f"`{name}` takes no arguments: `{syntax(name)}`")
        return Command(name)
    verb = SLASH_VERBS.get(name)
    if verb is None:
        raise CommandError(f"unknown command `{words[0][:40]}`")
    if len(words) < 2:
        raise CommandError(f"`{name}` needs {TARGET_NAME[verb.target]}: `{verb.syntax()}`")
    target, rest = words[1], (words[2].strip() if len(words) > 2 else None)
    target = _target(verb, target)
    if verb.text == "none" and rest:
        raise CommandError(f"`{name}` takes only {TARGET_NAME[verb.target]}: `{verb.syntax()}`")
    if verb.text == "required" and not rest:
        article = "an" if verb.text_name[:1] in "aeiou" else "a"
        raise CommandError(f"`{name}` needs {article} {verb.text_name}: `{verb.syntax()}`")
    return Command(name, target, rest or None)


def _target(verb: Verb, word: str) -> str:
    if verb.target == "task_or_all" and word.lower() == ALL:
        return ALL
    try:
        if verb.target == "escalation":
            return check_escalation_id(word)
        if verb.agents:
            return check_target(word)
        return check_task_id(word)
    except InvalidId as exc:
        raise CommandError(str(exc)) from None
