"""A Slack request body, parsed, and checked for the shape Bolt takes for granted.

Bolt routes a request by indexing its envelope without looking (`body["actions"][0]
["action_id"]`, `"type" in body["event"]`, `"id" in body["team"]`), so a signed body of
another shape raises inside it. `parse` refuses, with the reason, any body that is not
what Slack sends: each envelope field that Bolt or our listeners read must have the JSON
type Slack gives it, and each kind of payload must carry the fields it is routed by.

Parsing here, not in Bolt, also fixes Bolt's form parsing, which takes any form body with
the word "payload" anywhere in it (a kill reason, a channel name) for an interaction.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

JSON_TYPE = "application/json"


class Malformed(ValueError):
    """The body cannot be a request from Slack; the message says why."""


TEXT = "a string"
REF = "a string or an object"
OBJECT = "an object"
OBJECTS = "a list of objects"
FLAG = "a boolean or a string"

_CHECKS: dict[str, Any] = {
    TEXT: str,
    REF: (str, dict),
    OBJECT: dict,
    OBJECTS: list,
    FLAG: (bool, str),
}

# Envelope fields, wherever an envelope appears (the body, its event, an authorization…).
_FIELDS = {
    "type": TEXT,
    "token": TEXT,
    "team_id": TEXT,
    "user_id": TEXT,
    "channel_id": TEXT,
    "enterprise_id": TEXT,
    "api_app_id": TEXT,
    "trigger_id": TEXT,
    "response_url": TEXT,
    "thread_ts": TEXT,
    "callback_id": TEXT,
    "command": TEXT,
    "event_id": TEXT,
    "function_execution_id": TEXT,
    "bot_access_token": TEXT,
    "private_metadata": TEXT,
    "ts": TEXT,
    "event_ts": TEXT,
    "team": REF,
    "enterprise": REF,
    "user": REF,
    "channel": REF,
    "event": OBJECT,
    "view": OBJECT,
    "message": OBJECT,
    "previous_message": OBJECT,
    "container": OBJECT,
    "state": OBJECT,
    "item": OBJECT,
    "assistant_thread": OBJECT,
    "function_data": OBJECT,
    "workflow_step": OBJECT,
    "authorizations": OBJECTS,
    "actions": OBJECTS,
    "response_urls": OBJECTS,
    "is_enterprise_install": FLAG,
    "is_ext_shared_channel": FLAG,
}
# Objects that may be null where Slack sends them (e.g. `"enterprise": null`).
_NULLABLE = {TEXT, REF, FLAG}
# Inner objects that are envelopes themselves (Bolt looks for ids inside them too).
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread", "view")
_REF_FIELDS = ("id", "team_id", "enterprise_id", "name")

# What each kind of payload is routed and handled by: paths that must hold strings.
_USER = ("user", "id")
_REQUIRED = {
    "block_actions": (_USER, ("trigger_id",)),
    "view_submission": (
        _USER,
        ("view", "type"),
        ("view", "callback_id"),
        ("view", "private_metadata"),
    ),
    "view_closed": (_USER, ("view", "type"), ("view", "callback_id")),
    "shortcut": (_USER, ("callback_id",), ("trigger_id",)),
    "message_action": (_USER, ("callback_id",), ("trigger_id",)),
    "block_suggestion": (_USER, ("action_id",)),
    "event_callback": (("event", "type"),),
}
_EVENT_REQUIRED = {"message": (("channel",), ("ts",))}
_EVENT_TEXT = {"message": ("user", "thread_ts", "text", "subtype", "bot_id")}  # when present


def parse(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The payload Bolt routes: the JSON body, an interaction's `payload` field, or a slash
    command's form fields. Raises Malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8") from None
    if not text:
        raise Malformed("the body is empty")
    if content_type == JSON_TYPE or text.startswith("{"):
        payload = _json(text, "the body")
    else:
        fields = dict(parse_qsl(text, keep_blank_values=True))
        payload = _json(fields["payload"], "the payload field") if "payload" in fields else fields
    if not isinstance(payload, dict):
        raise Malformed("the payload is not a JSON object")
    try:
        _check_envelope(payload, "")
    except RecursionError:
        raise Malformed("the payload nests too deeply") from None
    _check_routing(payload)
    return payload


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise Malformed(f"{what} is not JSON") from None


def _check_envelope(envelope: dict[str, Any], where: str) -> None:
    for name, kind in _FIELDS.items():
        if name not in envelope:
            continue
        value = envelope[name]
        path = f"{where}{name}"
        if value is None and kind in _NULLABLE:
            continue
        if not isinstance(value, _CHECKS[kind]):
            raise Malformed(f"{path} is not {kind}")
        if kind == OBJECTS and not all(isinstance(item, dict) for item in value):
            raise Malformed(f"{path} is not {kind}")
        if kind == REF and isinstance(value, dict):
            for field in _REF_FIELDS:
                if not isinstance(value.get(field, ""), str | None):
                    raise Malformed(f"{path}.{field} is not {TEXT}")
    for name in _NESTED:
        if name in envelope:
            _check_envelope(envelope[name], f"{where}{name}.")
    for i, authorization in enumerate(envelope.get("authorizations") or ()):
        _check_envelope(authorization, f"{where}authorizations[{i}].")


def _check_routing(payload: dict[str, Any]) -> None:
    kind = payload.get("type") or ""
    _require(payload, _REQUIRED.get(kind, ()), f"a {kind} payload")
    if kind == "block_actions":
        if not payload.get("actions"):
            raise Malformed("a block_actions payload without actions")
        for i, action in enumerate(payload["actions"]):
            _require(action, (("action_id",),), f"actions[{i}]")
            if not isinstance(action.get("block_id", ""), str):
                raise Malformed(f"actions[{i}].block_id is not {TEXT}")
    if kind == "event_callback":
        event = payload["event"]
        what = f"a {event['type']} event"
        _require(event, _EVENT_REQUIRED.get(event["type"], ()), what)
        present = tuple((name,) for name in _EVENT_TEXT.get(event["type"], ()) if name in event)
        _require(event, present, what)
    view = payload.get("view")
    if isinstance(view, dict) and isinstance(view.get("state"), dict):
        values = view["state"].get("values", {})
        if not isinstance(values, dict) or not all(
            isinstance(block, dict) and all(isinstance(v, dict) for v in block.values())
            for block in values.values()
        ):
            raise Malformed("view.state.values is not an object of objects of objects")


def _require(data: dict[str, Any], paths: tuple[tuple[str, ...], ...], what: str) -> None:
    for path in paths:
        value: Any = data
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if not isinstance(value, str):
            raise Malformed(f"{what} whose {'.'.join(path)} is not {TEXT}")
