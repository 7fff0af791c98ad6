"""Block Kit as HTML, drawn from the JSON the bot sent: messages and modals.

Pure functions. A block or element this cannot draw is shown as its JSON under a
warning, never dropped. Buttons carry what a click sends back (`data-action`) and their
confirmation dialog (`data-confirm`); inputs carry their block and action ids, so the
page can build the `view_submission` state Slack would.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from typing import Any

from bot.sandbox.mrkdwn import Names, mrkdwn, plain

JsonDict = dict[str, Any]
_BUTTON_STYLES = {"primary", "danger"}


def text_object(node: Any, names: Names) -> str:
    if not isinstance(node, dict) or not isinstance(node.get("text"), str):
        return unknown(node, "a text object without text")
    if node.get("type") == "mrkdwn":
        return mrkdwn(node["text"], names)
    return plain(node["text"])


def unknown(node: Any, why: str) -> str:
    return (
        '<div class="bk-unknown"><div class="bk-warning">⚠ The sandbox cannot show '
        f"{html.escape(why)}; here is what the bot sent:</div>"
        f'<pre class="bk-json">{html.escape(json.dumps(node, indent=2, ensure_ascii=False))}'
        "</pre></div>"
    )


def _attr(value: Any) -> str:
    return html.escape(json.dumps(value, ensure_ascii=False), quote=True)


# ---------------------------------------------------------------- elements


def button(element: JsonDict, block_id: str, names: Names) -> str:
    style = element.get("style")
    css = f"bk-button bk-{style}" if style in _BUTTON_STYLES else "bk-button"
    action = {
        "type": "button",
        "action_id": element.get("action_id", ""),
        "block_id": block_id,
        "value": element.get("value", ""),
        "text": element.get("text", {}),
    }
    attrs = f' data-action="{_attr(action)}"'
    confirm = element.get("confirm")
    if isinstance(confirm, dict):
        attrs += f' data-confirm="{_attr(_confirm(confirm, names))}"'
    url = element.get("url")
    if isinstance(url, str):
        attrs += f' data-url="{html.escape(url, quote=True)}"'
    label = text_object(element.get("text"), names)
    return f'<button type="button" class="{css}"{attrs}>{label}</button>'


def _confirm(confirm: JsonDict, names: Names) -> JsonDict:
    """A confirmation dialog, drawn here so the page only shows it."""
    style = confirm.get("style")
    return {
        "title": text_object(confirm.get("title"), names) if confirm.get("title") else "",
        "text": text_object(confirm.get("text"), names),
        "confirm": text_object(confirm.get("confirm") or _plain("Yes"), names),
        "deny": text_object(confirm.get("deny") or _plain("Cancel"), names),
        "style": style if style in _BUTTON_STYLES else "primary",
    }


def _plain(text: str) -> JsonDict:
    return {"type": "plain_text", "text": text}


def image(element: JsonDict, names: Names) -> str:
    url = element.get("image_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return unknown(element, "an image without an http(s) address")
    alt = html.escape(str(element.get("alt_text", "")), quote=True)
    return f'<img class="bk-image" src="{html.escape(url, quote=True)}" alt="{alt}">'


def _element(element: Any, block_id: str, names: Names) -> str:
    if not isinstance(element, dict):
        return unknown(element, "an element that is not an object")
    kind = element.get("type")
    if kind == "button":
        return button(element, block_id, names)
    if kind in ("mrkdwn", "plain_text"):
        return f'<span class="bk-context-text">{text_object(element, names)}</span>'
    if kind == "image":
        return image(element, names)
    return unknown(element, f"an element of type {kind!r}")


# ---------------------------------------------------------------- inputs (modals)


def _input_element(element: Any, block_id: str, names: Names) -> str:
    if not isinstance(element, dict):
        return unknown(element, "an input element that is not an object")
    kind = element.get("type")
    action_id = str(element.get("action_id", ""))
    ids = (
        f'data-block-id="{html.escape(block_id, quote=True)}" '
        f'data-action-id="{html.escape(action_id, quote=True)}" '
        f'data-kind="{html.escape(str(kind), quote=True)}"'
    )
    if kind == "plain_text_input":
        return _text_input(element, ids)
    if kind == "radio_buttons":
        return _radio_buttons(element, block_id, ids, names)
    if kind == "static_select":
        return _select(element, ids, names)
    return unknown(element, f"an input of type {kind!r}")


def _text_input(element: JsonDict, ids: str) -> str:
    placeholder = element.get("placeholder")
    attrs = ids
    if isinstance(placeholder, dict):
        attrs += f' placeholder="{html.escape(str(placeholder.get("text", "")), quote=True)}"'
    if isinstance(element.get("max_length"), int):
        attrs += f' maxlength="{element["max_length"]}"'
    initial = html.escape(str(element.get("initial_value", "")))
    if element.get("multiline"):
        return f'<textarea class="bk-field" rows="4" {attrs}>{initial}</textarea>'
    return f'<input class="bk-field" type="text" {attrs} value="{initial}">'


def _option_value(option: JsonDict) -> str:
    return html.escape(json.dumps(option, ensure_ascii=False), quote=True)


def _radio_buttons(element: JsonDict, block_id: str, ids: str, names: Names) -> str:
    initial = element.get("initial_option")
    group = html.escape(f"{block_id}.{element.get('action_id', '')}", quote=True)
    rows = []
    for option in element.get("options") or []:
        checked = " checked" if option == initial else ""
        label = text_object(option.get("text"), names)
        rows.append(
            f'<label class="bk-radio"><input type="radio" name="{group}" '
            f'value="{_option_value(option)}"{checked}> {label}</label>'
        )
    return f'<div class="bk-radios" {ids}>{"".join(rows)}</div>'


def _select(element: JsonDict, ids: str, names: Names) -> str:
    initial = element.get("initial_option")
    rows = ['<option value="">Choose…</option>']
    for option in element.get("options") or []:
        selected = " selected" if option == initial else ""
        text = html.escape(str((option.get("text") or {}).get("text", "")))
        rows.append(f'<option value="{_option_value(option)}"{selected}>{text}</option>')
    return f'<select class="bk-field" {ids}>{"".join(rows)}</select>'


# ---------------------------------------------------------------- blocks


def _header(block: JsonDict, block_id: str, names: Names) -> str:
    return f'<div class="bk-header">{text_object(block.get("text"), names)}</div>'


def _section(block: JsonDict, block_id: str, names: Names) -> str:
    parts = []
    if "text" in block:
        parts.append(f'<div class="bk-section-text">{text_object(block["text"], names)}</div>')
    fields = block.get("fields")
    if fields:
        cells = "".join(
            f'<div class="bk-field-cell">{text_object(item, names)}</div>' for item in fields
        )
        parts.append(f'<div class="bk-fields">{cells}</div>')
    accessory = block.get("accessory")
    body = f'<div class="bk-section-body">{"".join(parts)}</div>'
    if accessory is not None:
        body += f'<div class="bk-accessory">{_element(accessory, block_id, names)}</div>'
    return f'<div class="bk-section">{body}</div>'


def _divider(block: JsonDict, block_id: str, names: Names) -> str:
    return '<hr class="bk-divider">'


def _context(block: JsonDict, block_id: str, names: Names) -> str:
    elements = "".join(_element(e, block_id, names) for e in block.get("elements") or [])
    return f'<div class="bk-context">{elements}</div>'


def _actions(block: JsonDict, block_id: str, names: Names) -> str:
    elements = "".join(_element(e, block_id, names) for e in block.get("elements") or [])
    return f'<div class="bk-actions">{elements}</div>'


def _image_block(block: JsonDict, block_id: str, names: Names) -> str:
    title = block.get("title")
    caption = f'<div class="bk-context">{text_object(title, names)}</div>' if title else ""
    return f'<div class="bk-image-block">{image(block, names)}{caption}</div>'


def _input(block: JsonDict, block_id: str, names: Names) -> str:
    label = text_object(block.get("label"), names)
    optional = ' <span class="bk-optional">(optional)</span>' if block.get("optional") else ""
    hint = block.get("hint")
    hint_html = f'<div class="bk-hint">{text_object(hint, names)}</div>' if hint else ""
    error = f'<div class="bk-error" data-error-for="{html.escape(block_id, quote=True)}"></div>'
    element = _input_element(block.get("element"), block_id, names)
    return (
        f'<div class="bk-input"><label class="bk-label">{label}{optional}</label>'
        f"{element}{error}{hint_html}</div>"
    )


_BLOCKS: dict[str, Callable[[JsonDict, str, Names], str]] = {
    "header": _header,
    "section": _section,
    "divider": _divider,
    "context": _context,
    "actions": _actions,
    "image": _image_block,
    "input": _input,
}


def block(node: Any, index: int, names: Names) -> str:
    if not isinstance(node, dict):
        return unknown(node, "a block that is not an object")
    kind = node.get("type")
    draw = _BLOCKS.get(kind) if isinstance(kind, str) else None
    if draw is None:
        return unknown(node, f"a block of type {kind!r}")
    block_id = node.get("block_id")
    if not isinstance(block_id, str):
        block_id = f"b{index}"  # Slack gives a block without an id one of its own
    return draw(node, block_id, names)


def blocks(nodes: Any, names: Names) -> str:
    if not isinstance(nodes, list):
        return unknown(nodes, "blocks that are not a list")
    return "".join(block(node, index, names) for index, node in enumerate(nodes))


def message(text: str, nodes: Any, names: Names) -> str:
    """A message: its blocks, or (without blocks) its text as mrkdwn, as Slack shows it."""
    if nodes:
        return blocks(nodes, names)
    return f'<div class="bk-section-text">{mrkdwn(text, names)}</div>'


def view(node: Mapping[str, Any], names: Names) -> str:
    """A modal's body (title, submit and close are drawn by the page from `view_chrome`)."""
    return blocks(node.get("blocks"), names)


def view_chrome(node: Mapping[str, Any], names: Names) -> JsonDict:
    def label(name: str, default: str | None) -> str | None:
        value = node.get(name)
        if isinstance(value, dict):
            return text_object(value, names)
        return None if default is None else plain(default)

    return {
        "title": label("title", "Modal"),
        "submit": label("submit", None),
        "close": label("close", "Cancel"),
    }
