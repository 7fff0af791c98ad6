"""`/agent`: parse; one service call on the listeners' pool; its ephemeral answer in the
ack when it is ready within `ANSWER_IN_ACK`, through the response_url after that."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from blocks.messages import overview_message, status_message, usage
from bot.records import ActionResult, Overview, TaskStatus
from bot.verbs import Reply, perform
from handlers.answers import PendingAnswer
from handlers.deps import Deps, Registry, bound
from handlers.errors import reporting
from handlers.parsing import HELP, Command, CommandError, parse

COMMAND = "/agent"


def reply_for(result: Reply) -> dict[str, Any]:
    """What the person who typed is told."""
    if isinstance(result, ActionResult):
        return {"text": f"✅ {result.message}"}
    if isinstance(result, TaskStatus):
        message = status_message(result)
    elif isinstance(result, Overview):
        message = overview_message(result)
    else:  # a CLI-only verb's reply
        return {"text": f"✅ {result}"}
    return {"text": message.text, "blocks": [b.to_dict() for b in message.blocks]}


def parsed(command: dict[str, Any]) -> Command | None:
    """The command to carry out; None when the ack already answered (help, a mistake)."""
    try:
        found = parse(command.get("text"))
    except CommandError:
        return None
    return None if found.verb == HELP else found


def acknowledge_command(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, *, deps: Deps
) -> None:
    """Parse; a command to carry out is handed to the listeners' pool at once (not
    through Bolt's lazy listeners, which copy the whole request first: a kill's path to
    its key is the one to keep short), and the ack waits a little for its answer."""
    try:
        found = parse(command.get("text"))
    except CommandError as problem:
        ack(text=usage(str(problem)), response_type="ephemeral")
        return
    if found.verb == HELP:
        ack(text=usage(), response_type="ephemeral")
        return
    answer = PendingAnswer(respond)
    deps.work(run_command, command, answer, client, deps=deps)
    answer.ack_with_it(ack, deps.answer_within)


def run_command(
    command: dict[str, Any], respond: Respond | PendingAnswer, client: WebClient, *, deps: Deps
) -> None:
    found = parsed(command)
    if found is None:
        return
    with reporting(command, client, respond):
        result = perform(deps.service, found.request(command["user_id"]))
        respond(response_type="ephemeral", replace_original=False, **reply_for(result))


def register(app: App, deps: Deps, registry: Registry) -> None:
    registry.commands.add(COMMAND)
    app.command(COMMAND)(bound(acknowledge_command, deps=deps))
