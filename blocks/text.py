"""Text helpers shared by the builders: Slack's limits, mentions, dates."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
TEXT_LIMIT = 3000
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
ELLIPSIS = "…"


def fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def who(actor: str | None) -> str:
    if not actor:
        return "someone"
    if actor[:1] in {"U", "W"} and actor.isalnum():
        return f"<@{actor}>"
    if actor.startswith("cli:"):
        return f"`{escape(actor)}` (break-glass CLI)"
    return f"_{escape(actor)}_"


def when(moment: datetime | None) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    if moment is None:
        return "-"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def compact_json(value: Any) -> str:
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str
    )


def code(text: str) -> str:
    # A zero-width space keeps a ``` inside the text from closing the block early.
    return "```" + text.replace("```", "`\u200b``") + "```"
