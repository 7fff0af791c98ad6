"""The sandbox's Block Kit renderer draws every block and element the bot sends: each
snapshot state under tests/snapshots/ (cards, review cards, modals), mrkdwn, and what it
cannot draw as JSON under a warning."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import blockkit
from bot.sandbox.mrkdwn import Names, mrkdwn, plain

SNAPSHOTS = sorted((Path(__file__).parent / "snapshots").glob("*.json"))
NAMES = Names(users={"U0OPERATOR": "olivia"}, channels={"C0TRIAGE": "triage"})


class Drawn(HTMLParser):
    """What a rendered fragment holds: its text, buttons, inputs and warnings."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.buttons: list[dict[str, Any]] = []
        self.fields: list[dict[str, str]] = []
        self.radios: list[dict[str, Any]] = []
        self.unknown = 0
        self._button: dict[str, Any] | None = None
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "bk-unknown" in values.get("class", "").split():
            self.unknown += 1
        if tag == "button":
            self._button = {
                "class": values.get("class", "").split(),
                "action": json.loads(values["data-action"]),
                "confirm": json.loads(values["data-confirm"]) if "data-confirm" in values else None,
                "label": "",
            }
        if "data-kind" in values:
            self.fields.append(values)
        if tag == "input" and values.get("type") == "radio":
            self.radios.append({**json.loads(values["value"]), "checked": "checked" in values})

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            self.buttons.append(self._button)
            self._button = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._button is not None:
            self._button["label"] += data

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def _render(snapshot: dict[str, Any]) -> str:
    if snapshot.get("type") == "modal":
        return blockkit.view(snapshot, NAMES)
    return blockkit.message(snapshot.get("text", ""), snapshot["blocks"], NAMES)


@pytest.mark.parametrize("path", SNAPSHOTS, ids=[p.stem for p in SNAPSHOTS])
def test_every_snapshot_state_is_drawn_whole(path: Path) -> None:
    snapshot = json.loads(path.read_text(encoding="utf-8"))
    drawn = Drawn(_render(snapshot))
    assert drawn.unknown == 0, "a block or element the bot sends is not drawn"

    nodes = _walk(snapshot["blocks"])
    buttons = [n for n in nodes if n.get("type") == "button"]
    assert [b["label"] for b in drawn.buttons] == [b["text"]["text"] for b in buttons]
    for sent, shown in zip(buttons, drawn.buttons, strict=True):
        assert shown["action"]["action_id"] == sent["action_id"]
        assert shown["action"]["value"] == sent.get("value", "")
        if sent.get("style"):
            assert f"bk-{sent['style']}" in shown["class"]
        assert (shown["confirm"] is None) == ("confirm" not in sent)
        if "confirm" in sent:
            assert sent["confirm"]["confirm"]["text"] in shown["confirm"]["confirm"]
            assert sent["confirm"]["deny"]["text"] in shown["confirm"]["deny"]

    inputs = [b for b in snapshot["blocks"] if b["type"] == "input"]
    assert [(f["data-block-id"], f["data-action-id"]) for f in drawn.fields] == [
        (b["block_id"], b["element"]["action_id"]) for b in inputs
    ]
    for block in inputs:
        assert block["label"]["text"] in drawn.all_text
        if "hint" in block:
            assert block["hint"]["text"] in drawn.all_text
        element = block["element"]
        if element["type"] == "radio_buttons":
            shown = [{k: v for k, v in r.items() if k != "checked"} for r in drawn.radios]
            assert shown == element["options"]
            checked = [r for r in drawn.radios if r["checked"]]
            assert len(checked) == (1 if "initial_option" in element else 0)

    for header in (b for b in snapshot["blocks"] if b["type"] == "header"):
        assert header["text"]["text"] in drawn.all_text


def test_a_modal_has_its_title_submit_and_close() -> None:
    modal = json.loads((Path(__file__).parent / "snapshots" / "modal_reject.json").read_text())
    chrome = blockkit.view_chrome(modal, NAMES)
    assert chrome == {"title": "Reject", "submit": "Reject", "close": "Cancel"}
    drawn = blockkit.view(modal, NAMES)
    assert 'data-error-for="comment"' in drawn  # where the bot's validation error shows
    assert "<textarea" in drawn and 'maxlength="3000"' in drawn


def test_fields_sections_and_context_keep_their_text() -> None:
    blocks = [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Agent*\nbilling"}]},
        {"type": "context", "elements": [{"type": "plain_text", "text": "a <b> note"}]},
        {"type": "divider"},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "see"},
            "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Open"}},
        },
    ]
    drawn = blockkit.blocks(blocks, NAMES)
    assert '<div class="bk-field-cell"><strong>Agent</strong><br>billing</div>' in drawn
    assert "a &lt;b&gt; note" in drawn
    assert '<hr class="bk-divider">' in drawn
    assert '<div class="bk-accessory"><button' in drawn


def test_what_it_cannot_draw_is_shown_as_json_with_a_warning() -> None:
    blocks = [
        {"type": "rich_text", "elements": [{"type": "rich_text_section"}]},
        {
            "type": "actions",
            "elements": [
                {"type": "datepicker", "action_id": "when"},
                {"type": "button", "text": {"type": "plain_text", "text": "Still here"}},
            ],
        },
        "not a block",
    ]
    drawn = blockkit.blocks(blocks, NAMES)
    assert drawn.count('class="bk-unknown"') == 3
    assert "a block of type &#x27;rich_text&#x27;" in drawn
    assert "rich_text_section" in drawn  # the JSON itself
    assert "an element of type &#x27;datepicker&#x27;" in drawn
    assert ">Still here</button>" in drawn  # the rest of the block is drawn


def test_a_message_without_blocks_shows_its_text() -> None:
    assert blockkit.message("*hi* <@U0OPERATOR>", [], NAMES) == (
        '<div class="bk-section-text"><strong>hi</strong> '
        '<span class="bk-mention">@olivia</span></div>'
    )


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*bold* _italic_ ~gone~", "<strong>bold</strong> <em>italic</em> <del>gone</del>"),
        ("`kill:demo-1` and *not`code`*", '<code class="bk-code">kill:demo-1</code> and *not'),
        ('```{\n  "a": 1\n}```', '<pre class="bk-pre">{\n  &quot;a&quot;: 1\n}</pre>'),
        ("a\nb", "a<br>b"),
        ("&gt; quoted\nafter", '<blockquote class="bk-quote">quoted</blockquote>after'),
        ("<@U0OPERATOR> <@U0NOBODY>", '<span class="bk-mention">@olivia</span> '),
        ("<#C0TRIAGE> <#C0OTHER|ops>", '<span class="bk-channel-link">#triage</span> '),
        ("<!here> <!subteam^S0OPS|@ops>", '<span class="bk-mention">@here</span> '),
        (
            "<!date^1795316652^{date_short_pretty} {time_secs}|2026-11-22 03:04 UTC>",
            '<span class="bk-date">2026-11-22 03:04 UTC</span>',
        ),
        (
            "<https://example.com/a?b=1&amp;c=2|the card>",
            '<a class="bk-link" href="https://example.com/a?b=1&amp;c=2" target="_blank" '
            'rel="noopener">the card</a>',
        ),
        ("<javascript:alert(1)|click>", "click"),
        (
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co",
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co",
        ),
        ("<img src=x onerror=alert(1)>", "img src=x onerror=alert(1)"),
    ],
)
def test_mrkdwn(text: str, html: str) -> None:
    assert html in mrkdwn(text, NAMES)


def test_mentions_of_unknown_ids_show_the_id() -> None:
    drawn = mrkdwn("<@U0NOBODY> <#C0OTHER|ops>", NAMES)
    assert '<span class="bk-mention">@U0NOBODY</span>' in drawn
    assert '<span class="bk-channel-link">#ops</span>' in drawn


def test_plain_text_is_never_markup() -> None:
    assert plain("*not bold* <b>\nnext") == "*not bold* &lt;b&gt;<br>next"
