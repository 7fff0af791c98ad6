"""The verbs people type, in one table: `/agent <verb> …` and `escbot <verb> …` are both
read from it, and both end in the verb's one service call. A new verb is one entry here.

Each verb says what it acts on (`target`), whether free text follows (a reason, an
instruction), and who may use it (shown in the help; the service enforces the role).
On the CLI, optional text is an option (`--reason`), required text a positional word.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from bot.edited_args import parse_args
from bot.keys import ALL

if TYPE_CHECKING:  # the table is read by pure code (help texts, parsers) too
    from bot.core import EscalationService, ReconcileReport
    from bot.records import ActionResult, EscalationShown, Overview, TaskStatus

Target = Literal["none", "task", "task_or_all", "escalation", "review"]
TextUse = Literal["none", "optional", "required"]
Surface = Literal["slash", "cli"]
Reply: TypeAlias = "ActionResult | TaskStatus | Overview | ReconcileReport | EscalationShown"
BOTH: frozenset[Surface] = frozenset({"slash", "cli"})


@dataclass(frozen=True)
class Request:
    """A verb as someone asked for it, on any surface."""

    verb: str
    actor: str
    target: str | None = None
    text: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def everything(self) -> bool:
        return self.target == ALL

    @property
    def subject(self) -> str:
        return self.target or ""


@dataclass(frozen=True)
class Option:
    """A CLI-only option of a verb (e.g. `decide`'s `--comment`)."""

    name: str
    help: str
    choices: tuple[str, ...] = ()
    positional: bool = False
    flag: bool = False  # on or off (`--raw`), no value


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str
    run: Callable[[EscalationService, Request], Reply]
    target: Target = "task"
    text: TextUse = "none"
    text_name: str = "reason"
    who: str = "operator"
    surfaces: frozenset[Surface] = BOTH
    options: tuple[Option, ...] = ()
    changes: bool = True  # False for reads: no --by on the CLI
    everything: str = ""  # for target task_or_all: what the `all` form does (admin only)
    agents: bool = False  # `agent:<name>` names every task of that agent
    # The CLI runs it even when the policy cannot be read (a warning, and the audit row
    # says so): stopping and inspecting must never wait for a fixed YAML file.
    break_glass: bool = False

    @property
    def target_word(self) -> str:
        return {
            "none": "",
            "task": "<task_id>",
            "task_or_all": "<task_id>",
            "escalation": "<escalation_id>",
            "review": "<review_id>",
        }[self.target]

    def syntax(self, command: str = "/agent", *, everything: bool = False) -> str:
        words = [command, self.name]
        if everything:
            words.append(ALL)
        elif self.target != "none":
            words.append(self.target_word)
        if self.text == "optional":
            words.append(f"[{self.text_name}…]")
        elif self.text == "required":
            words.append(f"<{self.text_name}…>")
        return " ".join(words)


def _kill(service: EscalationService, request: Request) -> Reply:
    if request.everything:
        return service.kill_all(request.actor, request.text)
    return service.kill(request.subject, request.actor, request.text)


def _revive(service: EscalationService, request: Request) -> Reply:
    if request.everything:
        return service.revive_all(request.actor)
    return service.revive(request.subject, request.actor)


def _decide(service: EscalationService, request: Request) -> Reply:
    text = request.options.get("args")
    args = None if text is None else parse_args(text)
    return service.decide(
        request.subject,
        request.actor,
        request.options["verdict"],
        comment=request.options.get("comment"),
        instruction=request.options.get("instruction"),
        args=args,
    )


REVIEW_VERDICTS = {"looks-right": "looks_right", "flag": "flagged"}


def _review(service: EscalationService, request: Request) -> Reply:
    return service.review(
        request.subject,
        request.actor,
        REVIEW_VERDICTS.get(request.options["verdict"], request.options["verdict"]),
        note=request.options.get("note"),
        pause=request.options.get("pause"),
    )


_TABLE = (
    Verb(
        "kill",
        "stop a task at its next check",
        _kill,
        target="task_or_all",
        text="optional",
        everything="stop every task at once",
        break_glass=True,
        agents=True,
    ),
    Verb(
        "revive",
        "lift a kill",
        _revive,
        target="task_or_all",
        everything="lift `kill all` once a second, different admin confirms",
        break_glass=True,
        agents=True,
    ),
    Verb(
        "pause",
        "make a task wait at its next check",
        lambda s, r: s.pause(r.subject, r.actor, r.text),
        text="optional",
        break_glass=True,
        agents=True,
    ),
    Verb(
        "resume",
        "lift a pause",
        lambda s, r: s.resume(r.subject, r.actor),
        break_glass=True,
        agents=True,
    ),
    Verb(
        "redirect",
        "send the running agent a new instruction",
        lambda s, r: s.redirect(r.subject, r.actor, r.text or ""),
        text="required",
        text_name="instruction",
    ),
    Verb(
        "restart",
        "lift a task's pause with new instructions (an inbox entry of kind restart)",
        lambda s, r: s.restart(r.subject, r.actor, r.text or ""),
        text="required",
        text_name="instruction",
    ),
    Verb(
        "abandon",
        "give a task up: kill it and tell its end user (outcomes)",
        lambda s, r: s.abandon(r.subject, r.actor, r.text),
        text="optional",
        text_name="explanation",
    ),
    Verb(
        "decide",
        "decide an escalation, as its card's buttons do",
        _decide,
        target="escalation",
        surfaces=frozenset({"cli"}),
        options=(
            Option(
                "verdict",
                "the decision",
                choices=("approve", "reject", "redirect", "terminate"),
                positional=True,
            ),
            Option("comment", "feedback for the agent (reject)"),
            Option("instruction", "what to do instead (required to redirect)"),
            Option("args", "approve with these arguments instead, a JSON object"),
        ),
    ),
    Verb(
        "escalate",
        "move an escalation to the next tier of its ladder now",
        lambda s, r: s.escalate_now(r.subject, r.actor, r.text),
        target="escalation",
        text="optional",
    ),
    Verb(
        "review",
        "give a sampled review its verdict, as its card's buttons do",
        _review,
        target="review",
        surfaces=frozenset({"cli"}),
        options=(
            Option("verdict", "the verdict", choices=tuple(REVIEW_VERDICTS), positional=True),
            Option("note", "what is wrong (required to flag)"),
            Option(
                "pause",
                "with flag: also pause the task, or every task of its agent",
                choices=("task", "agent"),
            ),
        ),
    ),
    Verb(
        "show",
        "an escalation as stored (redacted); --raw: as its agent sent it, audited",
        lambda s, r: s.show_escalation(r.subject, r.actor, raw=bool(r.options.get("raw"))),
        target="escalation",
        who="operator (--raw: admin)",
        surfaces=frozenset({"cli"}),
        options=(
            Option(
                "raw",
                "the escalation as the agent sent it (kept only under redaction.store_raw)",
                flag=True,
            ),
        ),
    ),
    Verb(
        "status",
        "kill/pause state, escalations and the last audit rows of a task",
        lambda s, r: s.status(r.subject),
        who="anyone",
        changes=False,
        break_glass=True,
        agents=True,
    ),
    Verb(
        "list",
        "open escalations, active kills and pauses",
        lambda s, r: s.overview(),
        target="none",
        who="anyone",
        changes=False,
        break_glass=True,
    ),
    Verb(
        "reconcile",
        "write every active kill and pause back into Redis",
        lambda s, r: s.reconcile(),
        target="none",
        who="anyone",
        surfaces=frozenset({"cli"}),
        changes=False,
        break_glass=True,
    ),
)

VERBS: Mapping[str, Verb] = MappingProxyType({verb.name: verb for verb in _TABLE})


def verbs_for(surface: Surface) -> list[Verb]:
    return [verb for verb in _TABLE if surface in verb.surfaces]


def perform(service: EscalationService, request: Request) -> Reply:
    """The one service call a request stands for."""
    return VERBS[request.verb].run(service, request)
