"""Slack's mrkdwn and plain text as HTML, the way Slack shows them: *bold*, _italic_,
~strike~, `code`, ```blocks```, > quotes, user and channel mentions, dates, links.

Slack text arrives with `&`, `<` and `>` escaped (`&amp;` …); everything here is
unescaped once and escaped again for HTML, so no text the bot sends can become markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_PRE = re.compile(r"```(.*?)```", re.DOTALL)
_ANGLE = re.compile(r"<([^<>\n]*)>")
_CODE = re.compile(r"`([^`\n]+)`")
_STYLES = (
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])"), "del"),
)
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class Names:
    """How ids show: people and channels by name (an unknown id shows as itself)."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)

    def user(self, user_id: str) -> str:
        return self.users.get(user_id, user_id)

    def channel(self, channel_id: str) -> str:
        return self.channels.get(channel_id, channel_id)


def slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain(text: str) -> str:
    """A plain_text object's text: shown as written, line breaks kept."""
    return html.escape(text).replace("\n", "<br>")


def mrkdwn(text: str, names: Names) -> str:
    out: list[str] = []
    for index, part in enumerate(_PRE.split(text)):
        if index % 2:
            body = part.strip("\n")
            out.append(f'<pre class="bk-pre">{html.escape(slack_unescape(body))}</pre>')
        elif part:
            out.append(_lines(part, names))
    return "".join(out)


def _lines(text: str, names: Names) -> str:
    rendered: list[str] = []
    quote: list[str] = []
    for line in text.split("\n"):
        if line.startswith(("&gt; ", "> ")) or line in ("&gt;", ">"):
            quote.append(_inline(line.split(" ", 1)[1] if " " in line else "", names))
            continue
        if quote:
            rendered.append(f'<blockquote class="bk-quote">{"<br>".join(quote)}</blockquote>')
            quote = []
        rendered.append(_inline(line, names) + "<br>")
    if quote:
        rendered.append(f'<blockquote class="bk-quote">{"<br>".join(quote)}</blockquote>')
    joined = "".join(rendered)
    return joined.removesuffix("<br>")


def _inline(text: str, names: Names) -> str:
    out: list[str] = []
    for index, part in enumerate(_ANGLE.split(text)):
        out.append(_token(part, names) if index % 2 else _styled(part))
    return "".join(out)


def _styled(text: str) -> str:
    """Text between tokens: code spans kept literal, then bold, italic, strike."""
    out: list[str] = []
    for index, part in enumerate(_CODE.split(text)):
        escaped = html.escape(slack_unescape(part))
        if index % 2:
            out.append(f'<code class="bk-code">{escaped}</code>')
            continue
        for pattern, tag in _STYLES:
            escaped = pattern.sub(rf"<{tag}>\1</{tag}>", escaped)
        out.append(escaped)
    return "".join(out)


def _token(token: str, names: Names) -> str:
    target, _, label = token.partition("|")
    handler = _TOKENS.get(target[:1])
    if handler is not None:
        return handler(target[1:], label, names)
    return _link(target, label)


def _user(target: str, label: str, names: Names) -> str:
    return _span("bk-mention", "@" + (label or names.user(target)))


def _channel(target: str, label: str, names: Names) -> str:
    return _span("bk-channel-link", "#" + (label or names.channel(target)))


def _special(target: str, label: str, names: Names) -> str:
    if target.startswith("date^"):
        return _span("bk-date", slack_unescape(label) or target)
    if target.startswith("subteam^"):
        return _span("bk-mention", label or "@" + target.removeprefix("subteam^"))
    return _span("bk-mention", "@" + (label or target))


_TOKENS: dict[str, Callable[[str, str, Names], str]] = {
    "@": _user,
    "#": _channel,
    "!": _special,
}


def _link(target: str, label: str) -> str:
    url = slack_unescape(target)
    text = html.escape(slack_unescape(label or target))
    if not url.startswith(_SAFE_SCHEMES):
        return text
    return f'<a class="bk-link" href="{html.escape(url)}" target="_blank" rel="noopener">{text}</a>'


def _span(css: str, text: str) -> str:
    return f'<span class="{css}">{html.escape(text)}</span>'
