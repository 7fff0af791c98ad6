"""`/agent`: parse and ack at once; then one service call and an ephemeral answer."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from blocks.messages import overview_message, status_message, usage
from bot.core import EscalationService
from handlers.deps import Deps, Registry
from handlers.errors import reporting
from handlers.parsing import Command, CommandError, parse

COMMAND = "/agent"


def perform(service: EscalationService, command: Command, actor: str) -> dict[str, Any]:
    """The one service call a command stands for, as the reply to send."""
    target, text = command.target or "", command.text
    if command.verb == "status":
        message = status_message(service.status(target))
        return {"text": message.text, "blocks": [b.to_dict() for b in message.blocks]}
    if command.verb == "list":
        message = overview_message(service.overview())
        return {"text": message.text, "blocks": [b.to_dict() for b in message.blocks]}
    if command.verb == "kill":
        result = (
            service.kill_all(actor, text)
            if command.everything
            else service.kill(target, actor, text)
        )
    elif command.verb == "revive":
        result = service.revive_all(actor) if command.everything else service.revive(target, actor)
    elif command.verb == "pause":
        result = service.pause(target, actor, text)
    elif command.verb == "resume":
        result = service.resume(target, actor)
    else:
        result = service.redirect(target, actor, text or "")
    return {"text": f"✅ {result.message}"}


def _parsed(command: dict[str, Any]) -> Command | None:
    """The command to carry out; None when the ack already answered (help, a mistake)."""
    try:
        parsed = parse(command.get("text"))
    except CommandError:
        return None
    return None if parsed.verb == "help" else parsed


def register(app: App, deps: Deps, registry: Registry) -> None:
    registry.commands.add(COMMAND)

    def acknowledge_command(ack: Ack, command: dict[str, Any]) -> None:
        try:
            parsed = parse(command.get("text"))
        except CommandError as problem:
            ack(text=usage(str(problem)), response_type="ephemeral")
            return
        if parsed.verb == "help":
            ack(text=usage(), response_type="ephemeral")
            return
        ack()

    def run_command(command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        parsed = _parsed(command)
        if parsed is None:
            return
        with reporting(command, client, respond):
            reply = perform(deps.service, parsed, command["user_id"])
            respond(response_type="ephemeral", replace_original=False, **reply)

    app.command(COMMAND)(ack=acknowledge_command, lazy=[run_command])
