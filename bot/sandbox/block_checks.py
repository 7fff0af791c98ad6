"""Block Kit and views checked as Slack checks them: `slack_sdk`'s models plus the limits
Slack enforces on top of them, as Slack's own error messages with JSON pointers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.sandbox.slack_records import (
    BUTTON_VALUE_MAX,
    HEADER_TEXT_MAX,
    ID_MAX,
    MALFORMED_BLOCK_ERRORS,
    MODAL_BLOCKS_MAX,
    PRIVATE_METADATA_MAX,
    SECTION_FIELD_TEXT_MAX,
    SECTION_TEXT_MAX,
    VIEW_TEXT_MAX,
    JsonDict,
)


def _problem(reason: str, pointer: str) -> str:
    return f"[ERROR] {reason} [json-pointer:{pointer}]"


def _too_long(limit: int, pointer: str) -> str:
    return _problem(f"must be less than {limit + 1} characters", pointer)


def _text_of(node: Any) -> str | None:
    text = node.get("text") if isinstance(node, dict) else None
    return text if isinstance(text, str) else None


def _walk(node: Any, pointer: str) -> Iterator[tuple[JsonDict, str]]:
    """Every object inside `node`, with its JSON pointer."""
    if isinstance(node, dict):
        yield node, pointer
        for key, value in node.items():
            yield from _walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{index}")


def _text_object_problems(value: Any, pointer: str, *, plain_only: bool) -> list[str]:
    """slack_sdk turns strings and unknown types into text objects; Slack refuses them."""
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(value, dict) or value.get("type") not in allowed:
        return [_problem(f"must be a text object of type {' or '.join(allowed)}", pointer)]
    return []


def _section_problems(block: JsonDict, pointer: str) -> list[str]:
    problems: list[str] = []
    if "text" in block:
        problems += _text_object_problems(block["text"], f"{pointer}/text", plain_only=False)
        text = _text_of(block["text"])
        if text is not None and len(text) > SECTION_TEXT_MAX:
            problems.append(_too_long(SECTION_TEXT_MAX, f"{pointer}/text/text"))
    for index, item in enumerate(block.get("fields") or []):
        at = f"{pointer}/fields/{index}"
        problems += _text_object_problems(item, at, plain_only=False)
        text = _text_of(item)
        if text is not None and len(text) > SECTION_FIELD_TEXT_MAX:
            problems.append(_too_long(SECTION_FIELD_TEXT_MAX, f"{at}/text"))
    return problems


def _header_problems(block: JsonDict, pointer: str) -> list[str]:
    problems = _text_object_problems(block.get("text"), f"{pointer}/text", plain_only=True)
    text = _text_of(block.get("text"))
    if text is not None and len(text) > HEADER_TEXT_MAX:
        problems.append(_too_long(HEADER_TEXT_MAX, f"{pointer}/text/text"))
    return problems


def _block_type_problems(block: JsonDict, pointer: str) -> list[str]:
    if block["type"] == "section":
        return _section_problems(block, pointer)
    if block["type"] == "header":
        return _header_problems(block, pointer)
    if block["type"] == "input":
        return _text_object_problems(block.get("label"), f"{pointer}/label", plain_only=True)
    return []


def _element_limits(block: JsonDict, pointer: str) -> list[str]:
    problems: list[str] = []
    action_ids: set[str] = set()
    for node, at in _walk(block, pointer):
        action_id = node.get("action_id")
        if isinstance(action_id, str):
            if len(action_id) > ID_MAX:
                problems.append(_too_long(ID_MAX, f"{at}/action_id"))
            elif action_id in action_ids:
                problems.append(_problem(f"duplicate action_id: {action_id}", f"{at}/action_id"))
            action_ids.add(action_id)
        block_id = node.get("block_id")
        if isinstance(block_id, str) and len(block_id) > ID_MAX:
            problems.append(_too_long(ID_MAX, f"{at}/block_id"))
        if node.get("type") == "button":
            problems += _button_problems(node, at)
    return problems


def _button_problems(button: JsonDict, pointer: str) -> list[str]:
    problems = _text_object_problems(button.get("text"), f"{pointer}/text", plain_only=True)
    value = button.get("value")
    if isinstance(value, str) and len(value) > BUTTON_VALUE_MAX:
        problems.append(_too_long(BUTTON_VALUE_MAX, f"{pointer}/value"))
    return problems


def _sdk_problems(block: JsonDict, pointer: str) -> list[str]:
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [_problem(f"unsupported block type: {block['type']}", f"{pointer}/type")]
        parsed.validate_json()
        parsed.to_dict()  # validates every nested element as well
    except MALFORMED_BLOCK_ERRORS as exc:
        return [_problem(str(exc) or type(exc).__name__, pointer)]
    return []


def block_problems(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [_problem("must provide an object", pointer)]
    if not isinstance(block.get("type"), str):
        return [_problem("missing required field: type", pointer)]
    problems = _block_type_problems(block, pointer) + _element_limits(block, pointer)
    return problems or _sdk_problems(block, pointer)


def blocks_problems(blocks: list[Any], *, limit: int, pointer: str) -> list[str]:
    if len(blocks) > limit:
        return [_problem(f"no more than {limit} items allowed", pointer)]
    problems: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        at = f"{pointer}/{index}"
        problems += block_problems(block, at)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.append(_problem(f"duplicate block_id: {block_id}", f"{at}/block_id"))
            block_ids.add(block_id)
    return problems


def _view_text_problems(view: JsonDict, name: str, pointer: str, *, required: bool) -> list[str]:
    value = view.get(name)
    if value is None:
        return [_problem(f"missing required field: {name}", pointer)] if required else []
    at = f"{pointer}/{name}"
    if not isinstance(value, dict) or value.get("type") != "plain_text":
        return [_problem("must be a plain_text object", at)]
    text = _text_of(value)
    if not text:
        return [_problem("must be at least 1 character", f"{at}/text")]
    if len(text) > VIEW_TEXT_MAX:
        return [_too_long(VIEW_TEXT_MAX, f"{at}/text")]
    return []


def _view_string_problems(view: JsonDict, pointer: str) -> list[str]:
    problems: list[str] = []
    limits = {
        "private_metadata": PRIVATE_METADATA_MAX,
        "callback_id": ID_MAX,
        "external_id": ID_MAX,
    }
    for name, limit in limits.items():
        value = view.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(_problem("must be a string", f"{pointer}/{name}"))
        elif len(value) > limit:
            problems.append(_too_long(limit, f"{pointer}/{name}"))
    return problems


def _view_blocks_problems(view: JsonDict, pointer: str) -> list[str]:
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [_problem("missing required field: blocks", pointer)]
    problems = blocks_problems(blocks, limit=MODAL_BLOCKS_MAX, pointer=f"{pointer}/blocks")
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and view.get("submit") is None:
        problems.append(_problem("submit is required when the view has input blocks", pointer))
    return problems


def view_problems(view: Any, pointer: str = "/view") -> list[str]:
    if not isinstance(view, dict):
        return [_problem("must provide an object", pointer)]
    if view.get("type") != "modal":
        return [_problem("type must be modal", f"{pointer}/type")]
    problems = _view_text_problems(view, "title", pointer, required=True)
    problems += _view_text_problems(view, "submit", pointer, required=False)
    problems += _view_text_problems(view, "close", pointer, required=False)
    problems += _view_string_problems(view, pointer)
    problems += _view_blocks_problems(view, pointer)
    if problems:
        return problems
    try:
        model = View(**view)
        model.validate_json()
        model.to_dict()
    except MALFORMED_BLOCK_ERRORS as exc:
        return [_problem(str(exc) or type(exc).__name__, pointer)]
    return []
