"""What the fake Slack records and answers with: its identity and Slack's limits, the
calls, messages, ephemeral answers and response-URL posts, and the error Slack answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackObjectFormationError

BOT_USER_ID = "UBOTFAKE"
BOT_ID = "BBOTFAKE"
BOT_NAME = "escbot"
TEAM_ID = "T0FAKE"
TEAM_NAME = "Fake Team"
APP_ID = "A0FAKE"
WORKSPACE_URL = "https://fake-slack.test/"

MESSAGE_BLOCKS_MAX = 50
MODAL_BLOCKS_MAX = 100
MESSAGE_TEXT_MAX = 40_000
SECTION_TEXT_MAX = 3000
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_VALUE_MAX = 2000
ID_MAX = 255
VIEW_TEXT_MAX = 24
PRIVATE_METADATA_MAX = 3000

JSON_ENCODED_FIELDS = ("blocks", "attachments", "view", "metadata")
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # called with the xapp- token
MALFORMED_BLOCK_ERRORS = (
    SlackObjectFormationError,
    TypeError,
    ValueError,
    KeyError,
    AttributeError,
)

Params = dict[str, Any]
JsonDict = dict[str, Any]


class SlackError(Exception):
    """An `ok: false` answer, raised by a method handler."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    def body(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error": self.error}
        if self.messages:
            if self.error == "invalid_blocks":
                body["errors"] = [m.removeprefix("[ERROR] ") for m in self.messages]
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass
class Call:
    """One Web API request. `failed` marks an HTTP-level failure (429, 5xx, outage)."""

    method: str
    params: Params
    at: float
    failed: bool = False
    error: str | None = None
    token: str | None = None
    status: int = 200


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[JsonDict] = field(default_factory=list)
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    attachments: list[JsonDict] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)
    edited: bool = False
    reply_count: int = 0

    def to_slack(self) -> JsonDict:
        body: JsonDict = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "ts": self.ts,
            "team": TEAM_ID,
        }
        if self.bot_id is not None:
            body["bot_id"] = self.bot_id
            body["app_id"] = APP_ID
        if self.blocks:
            body["blocks"] = self.blocks
        if self.attachments:
            body["attachments"] = self.attachments
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        if self.reactions:
            body["reactions"] = [
                {"name": name, "users": [BOT_USER_ID], "count": 1} for name in self.reactions
            ]
        if self.edited:
            body["edited"] = {"user": BOT_USER_ID, "ts": self.ts}
        if self.reply_count:
            body["reply_count"] = self.reply_count
        return body


@dataclass
class Ephemeral:
    channel: str
    user: str
    message_ts: str
    text: str
    blocks: list[JsonDict]
    thread_ts: str | None = None


@dataclass
class ResponsePost:
    """One POST to a response URL; `accepted` is False when it was answered 400."""

    id: str
    body: JsonDict
    at: float
    accepted: bool


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str | None


@dataclass
class _Reply:
    status: int
    body: JsonDict
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _ResponseTarget:
    channel: str | None
    message_ts: str | None
