"""A local Slack Web API (and response URLs) served over real HTTP for the real WebClient:
the stand-in for Slack that `escbot sandbox` runs the bot against, and the tests too.

Every call is recorded, message `ts` values are assigned like Slack's, Block Kit and
views are validated with `slack_sdk` models plus the limits Slack enforces on top of
them, and failures (429 with `Retry-After`, 5xx, a full outage) can be injected.
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message as HttpHeaders
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.sandbox.rate_limit import ChannelRateLimit

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


# ---------------------------------------------------------------- Block Kit and views


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


# ---------------------------------------------------------------- request parsing


def _decode_json_fields(params: Params) -> Params:
    """Form bodies carry `blocks`, `view`... as JSON strings; Slack reads them as JSON."""
    for name in JSON_ENCODED_FIELDS:
        value = params.get(name)
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                params[name] = json.loads(value)
    return params


def parse_params(query: str, raw: bytes, content_type: str) -> tuple[Params, bool]:
    """The request's arguments and whether they came as a JSON body."""
    params: Params = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    is_json = kind == "application/json"
    if is_json:
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        params.update(body)
    elif kind == "application/x-www-form-urlencoded" or not raw:
        params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    else:
        raise SlackError("invalid_form_data")
    return _decode_json_fields(params), is_json


def _bearer(headers: HttpHeaders) -> str | None:
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _string(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _require(params: Params, name: str, error: str) -> str:
    value = _string(params, name)
    if value is None:
        raise SlackError(error)
    return value


def _format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _parse_ts(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or len(fraction) != 6 or not fraction.isdigit():
        raise ValueError(f"not a Slack ts: {ts!r}")
    return int(seconds) * 1_000_000 + int(fraction)


# ---------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            reply = self.server.fake._handle(url.path, url.query, raw, self.headers)
        except Exception as exc:  # a bug in the fake must reach the test, not reset the socket
            reply = _Reply(500, {"ok": False, "error": "fake_slack_error", "detail": repr(exc)})
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


# ---------------------------------------------------------------- the fake


class FakeSlack:
    def __init__(
        self,
        *,
        groups: dict[str, list[str]] | None = None,
        valid_tokens: set[str] | None = None,
        channels: set[str] | None = None,
        socket_mode_url: str | None = None,
        rate_limit: ChannelRateLimit | bool | None = True,
    ) -> None:
        """`rate_limit`: Slack's per-channel limit by default; None (or False) for none."""
        self.rate_limit = ChannelRateLimit() if rate_limit is True else rate_limit or None
        self.groups: dict[str, list[str]] = groups if groups is not None else {}
        self.valid_tokens = valid_tokens
        self.channels = channels
        self.socket_mode_url = socket_mode_url  # what apps.connections.open answers
        self._changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[Params], JsonDict]] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
        }
        self.reset()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-slack",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def reset(self) -> None:
        """Forget everything: calls, messages, views, responses, injected failures."""
        with self._changed:
            self._calls: list[Call] = []
            self._messages: dict[tuple[str, str], Message] = {}
            self._ephemerals: list[Ephemeral] = []
            self._views: dict[str, JsonDict] = {}
            self._external_ids: dict[str, str] = {}
            self._expired_triggers: set[str] = set()
            self._used_triggers: set[str] = set()
            self._failures: dict[str, deque[_Failure]] = {}
            self._response_targets: dict[str, _ResponseTarget] = {}
            self._response_posts: list[ResponsePost] = []
            self._down = False
            self._hooks: dict[str, Callable[[], None]] = {}
            self._last_micros = 0
            self._view_counter = 0
            self._changed.notify_all()

    # ------------------------------------------------------------ recorded calls

    def calls(self, method: str | None = None) -> list[Call]:
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def clear(self) -> None:
        """Forget the recorded calls (state such as messages is kept)."""
        with self._changed:
            self._calls.clear()

    def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
        count: int = 1,
    ) -> list[Call]:
        """Wait until `count` calls of `method` (failed attempts included) match."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [
                    c
                    for c in self._calls
                    if c.method == method and (predicate is None or predicate(c))
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._timeout_report(method, count, len(found), timeout))
                self._changed.wait(remaining)

    def _timeout_report(self, method: str, count: int, found: int, timeout: float) -> str:
        recorded = [
            c.method + (f" ({c.error})" if c.error else "") + (" [failed]" if c.failed else "")
            for c in self._calls
        ]
        return (
            f"timed out after {timeout}s waiting for {count} {method} call(s); "
            f"{found} matched; recorded calls: {recorded or 'none'}"
        )

    # ------------------------------------------------------------ state accessors

    def messages(self, channel: str | None = None) -> list[Message]:
        with self._changed:
            found = [m for m in self._messages.values() if channel is None or m.channel == channel]
            return copy.deepcopy(sorted(found, key=lambda m: _parse_ts(m.ts)))

    def message(self, channel: str, ts: str) -> Message:
        with self._changed:
            message = self._messages.get((channel, ts))
            if message is None:
                raise KeyError(f"no message {ts} in {channel}")
            return copy.deepcopy(message)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread, oldest first, without its parent message."""
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts and m.ts != thread_ts]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._changed:
            found = [
                e
                for e in self._ephemerals
                if channel in (None, e.channel) and user in (None, e.user)
            ]
            return copy.deepcopy(found)

    def views(self) -> list[JsonDict]:
        with self._changed:
            return copy.deepcopy(list(self._views.values()))

    def view(self, view_id: str) -> JsonDict:
        with self._changed:
            if view_id not in self._views:
                raise KeyError(f"no view {view_id}")
            return copy.deepcopy(self._views[view_id])

    def seed_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        blocks: list[JsonDict] | None = None,
    ) -> Message:
        """Store a message someone else posted, e.g. the human message an event refers to."""
        with self._changed:
            if ts is None:
                ts = self._next_ts()
            else:
                self._last_micros = max(self._last_micros, _parse_ts(ts))
            if (channel, ts) in self._messages:
                raise ValueError(f"message {ts} already exists in {channel}")
            message = Message(
                channel, ts, text, blocks or [], thread_ts=thread_ts, user=user, bot_id=bot_id
            )
            self._messages[(channel, ts)] = message
            self._changed.notify_all()
            return copy.deepcopy(message)

    # ------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        with self._changed:
            queue = self._failures.setdefault(method, deque())
            queue.extend(_Failure(status, retry_after, error) for _ in range(times))

    def before_answering(self, method: str, hook: Callable[[], None] | None) -> None:
        """Run `hook` once, after the next `method` call has done its work and before it is
        answered: what a click landing in the middle of the bot's call would do."""
        with self._changed:
            if hook is None:
                self._hooks.pop(method, None)
            else:
                self._hooks[method] = hook

    def set_down(self, down: bool) -> None:
        """While down every /api/ call is answered 503, as when Slack is out."""
        with self._changed:
            self._down = down

    def expire_trigger(self, trigger_id: str) -> None:
        with self._changed:
            self._expired_triggers.add(trigger_id)

    # ------------------------------------------------------------ response URLs

    def response_url(
        self,
        name: str | None = None,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A response URL; bound to a message, it honours replace_original/delete_original."""
        response_id = name or secrets.token_hex(8)
        with self._changed:
            self._response_targets[response_id] = _ResponseTarget(channel, message_ts)
        return f"{self.url}/response/{response_id}"

    def responses(self, id: str | None = None) -> list[JsonDict]:
        """Bodies of the accepted POSTs to response URLs (all of them, or one URL's)."""
        return [p.body for p in self.response_posts(id) if p.accepted]

    def response_posts(self, id: str | None = None) -> list[ResponsePost]:
        with self._changed:
            return copy.deepcopy([p for p in self._response_posts if id is None or p.id == id])

    def wait_for_response(
        self,
        predicate: Callable[[JsonDict], bool] | None = None,
        timeout: float = 5.0,
        *,
        id: str | None = None,
    ) -> JsonDict:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for post in self._response_posts:
                    if not post.accepted or (id is not None and post.id != id):
                        continue
                    if predicate is None or predicate(post.body):
                        return copy.deepcopy(post.body)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    ids = [p.id for p in self._response_posts]
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for a response URL post; "
                        f"posts so far went to: {ids or 'none'}"
                    )
                self._changed.wait(remaining)

    # ------------------------------------------------------------ HTTP entry point

    def _handle(self, path: str, query: str, raw: bytes, headers: HttpHeaders) -> _Reply:
        if path.startswith("/api/"):
            return self._api(path.removeprefix("/api/"), query, raw, headers)
        if path.startswith("/response/"):
            return self._response(path.removeprefix("/response/"), raw)
        return _Reply(404, {"ok": False, "error": "not_found"})

    def _api(self, method: str, query: str, raw: bytes, headers: HttpHeaders) -> _Reply:
        token = _bearer(headers)
        try:
            params, is_json = parse_params(query, raw, headers.get("Content-Type") or "")
        except SlackError as exc:
            return self._finish(Call(method, {}, time.time(), token=token), exc.body())
        if not is_json and token is None:
            token = _string(params, "token")
        params.pop("token", None)
        call = Call(method, params, time.time(), token=token)
        failure = self._take_failure(method)
        if failure is None and self.rate_limit is not None:
            wait = self.rate_limit.retry_after(method, params.get("channel"))
            failure = _Failure(429, wait, None) if wait is not None else None
        if failure is not None:
            return self._fail(call, failure)
        body = self._answer(method, params, token)
        with self._changed:
            hook = self._hooks.pop(method, None)
        if hook is not None:
            hook()
        return self._finish(call, body)

    def _take_failure(self, method: str) -> _Failure | None:
        with self._changed:
            if self._down:
                return _Failure(503, 0, "service_unavailable")
            queue = self._failures.get(method)
            return queue.popleft() if queue else None

    def _fail(self, call: Call, failure: _Failure) -> _Reply:
        headers: dict[str, str] = {}
        if failure.status == 429:
            error = "ratelimited"
            headers["Retry-After"] = str(failure.retry_after)
        else:
            error = failure.error or "internal_error"
        call.failed, call.error, call.status = True, error, failure.status
        self._record(call)
        return _Reply(failure.status, {"ok": False, "error": error}, headers)

    def _answer(self, method: str, params: Params, token: str | None) -> JsonDict:
        handler = self._methods.get(method)
        try:
            if handler is None:
                raise SlackError("unknown_method")
            self._check_token(token, method)
            return {"ok": True, **handler(params)}
        except SlackError as exc:
            return exc.body()

    def _finish(self, call: Call, body: JsonDict) -> _Reply:
        if not body.get("ok"):
            call.error = body.get("error")
        self._record(call)
        return _Reply(200, body)

    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def _check_token(self, token: str | None, method: str) -> None:
        if not token:
            raise SlackError("not_authed")
        if method in APP_TOKEN_METHODS:
            valid = token.startswith("xapp-")
        elif self.valid_tokens is not None:
            valid = token in self.valid_tokens
        else:
            valid = token.startswith("xoxb-")
        if not valid:
            raise SlackError("invalid_auth")

    # ------------------------------------------------------------ shared helpers

    def _next_ts(self) -> str:
        with self._changed:
            micros = max(time.time_ns() // 1000, self._last_micros + 1)
            self._last_micros = micros
            return _format_ts(micros)

    def _channel(self, params: Params) -> str:
        channel = _require(params, "channel", "channel_not_found")
        if self.channels is not None and channel not in self.channels:
            raise SlackError("channel_not_found")
        return channel

    def _content(
        self, params: Params
    ) -> tuple[str | None, list[JsonDict] | None, list[JsonDict] | None]:
        text = _string(params, "text")
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            raise SlackError("msg_too_long")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            problems = blocks_problems(blocks, limit=MESSAGE_BLOCKS_MAX, pointer="/blocks")
            if problems:
                raise SlackError("invalid_blocks", problems)
        if attachments is not None and not isinstance(attachments, list):
            raise SlackError("invalid_attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        return text, blocks, attachments

    def _stored(self, channel: str, ts: str) -> Message:
        message = self._messages.get((channel, ts))
        if message is None:
            raise SlackError("message_not_found")
        return message

    # ------------------------------------------------------------ Web API methods

    def _apps_connections_open(self, params: Params) -> JsonDict:
        if self.socket_mode_url is None:
            raise SlackError("access_denied")  # Socket Mode is not turned on
        return {"url": self.socket_mode_url}

    def _auth_test(self, params: Params) -> JsonDict:
        return {
            "url": WORKSPACE_URL,
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        text, blocks, attachments = self._content(params)
        thread_ts = _string(params, "thread_ts")
        with self._changed:
            if thread_ts is not None:
                parent = self._messages.get((channel, thread_ts))
                if parent is None:
                    raise SlackError("thread_not_found")
                thread_ts = parent.thread_ts or parent.ts
                root = self._messages[(channel, thread_ts)]
                root.thread_ts = thread_ts
                root.reply_count += 1
            message = Message(
                channel,
                self._next_ts(),
                text or "",
                blocks or [],
                thread_ts=thread_ts,
                attachments=attachments or [],
            )
            self._messages[(channel, message.ts)] = message
            return {"channel": channel, "ts": message.ts, "message": message.to_slack()}

    def _chat_update(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        ts = _require(params, "ts", "message_not_found")
        text, blocks, attachments = self._content(params)
        with self._changed:
            message = self._stored(channel, ts)
            if message.bot_id != BOT_ID:
                raise SlackError("cant_update_message")
            if text is not None:
                message.text = text
            if blocks is not None:
                message.blocks = blocks
            if attachments is not None:
                message.attachments = attachments
            message.edited = True
            updated = message.to_slack()
        return {"channel": channel, "ts": ts, "text": updated["text"], "message": updated}

    def _chat_post_ephemeral(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        user = _require(params, "user", "user_not_found")
        text, blocks, _ = self._content(params)
        ephemeral = Ephemeral(
            channel, user, self._next_ts(), text or "", blocks or [], _string(params, "thread_ts")
        )
        with self._changed:
            self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.message_ts}

    def _chat_get_permalink(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        ts = _require(params, "message_ts", "message_not_found")
        with self._changed:
            message = self._stored(channel, ts)
        permalink = f"https://fake-slack.test/archives/{channel}/p{ts.replace('.', '')}"
        if message.thread_ts is not None and message.thread_ts != ts:
            permalink += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": permalink}

    def _reactions_add(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        ts = _require(params, "timestamp", "no_item_specified")
        name = _require(params, "name", "invalid_name")
        with self._changed:
            message = self._stored(channel, ts)
            if name in message.reactions:
                raise SlackError("already_reacted")
            message.reactions.append(name)
        return {}

    def _usergroups_users_list(self, params: Params) -> JsonDict:
        usergroup = _require(params, "usergroup", "no_such_subteam")
        users = self.groups.get(usergroup)
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}

    def _users_info(self, params: Params) -> JsonDict:
        user = _require(params, "user", "user_not_found")
        if user[0] not in "UW" or not user.isalnum():
            raise SlackError("user_not_found")
        name = BOT_NAME if user == BOT_USER_ID else user.lower()
        return {
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": name,
                "real_name": f"Fake {name}",
                "deleted": False,
                "is_bot": user == BOT_USER_ID,
                "profile": {"real_name": f"Fake {name}", "display_name": name},
            }
        }

    # ------------------------------------------------------------ views

    def _use_trigger(self, params: Params) -> None:
        trigger_id = _string(params, "trigger_id")
        if trigger_id is None:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        with self._changed:
            if trigger_id in self._expired_triggers:
                raise SlackError("expired_trigger_id")
            if trigger_id in self._used_triggers:
                raise SlackError("exchanged_trigger_id")
            self._used_triggers.add(trigger_id)

    def _valid_view(self, params: Params) -> JsonDict:
        view = params.get("view")
        if view is None:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: view"])
        problems = view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", problems)
        valid: JsonDict = view
        return valid

    def _store_view(self, view: JsonDict, previous: JsonDict | None = None) -> JsonDict:
        with self._changed:
            if previous is None:
                self._view_counter += 1
                view_id = f"V{self._view_counter:010d}"
            else:
                view_id = previous["id"]
            external_id = view.get("external_id") or (previous or {}).get("external_id", "")
            owner = self._external_ids.get(external_id) if external_id else None
            if owner is not None and owner != view_id:
                raise SlackError("duplicate_external_id")
            stored = {
                **view,
                "id": view_id,
                "team_id": TEAM_ID,
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "external_id": external_id,
                "root_view_id": (previous or {}).get("root_view_id", view_id),
                "previous_view_id": None,
                "app_id": APP_ID,
                "app_installed_team_id": TEAM_ID,
                "bot_id": BOT_ID,
                "clear_on_close": bool(view.get("clear_on_close", False)),
                "notify_on_close": bool(view.get("notify_on_close", False)),
            }
            self._views[view_id] = stored
            if external_id:
                self._external_ids[external_id] = view_id
            return {"view": copy.deepcopy(stored)}

    def _views_open(self, params: Params) -> JsonDict:
        view = self._valid_view(params)
        self._use_trigger(params)
        return self._store_view(view)

    def _views_push(self, params: Params) -> JsonDict:
        return self._views_open(params)

    def _views_update(self, params: Params) -> JsonDict:
        view_id = _string(params, "view_id")
        external_id = _string(params, "external_id")
        if view_id is None and external_id is None:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: view_id"])
        view = self._valid_view(params)
        with self._changed:
            if view_id is None:
                view_id = self._external_ids.get(external_id or "")
            previous = self._views.get(view_id or "")
            if previous is None:
                raise SlackError("not_found")
            expected_hash = _string(params, "hash")
            if expected_hash is not None and expected_hash != previous["hash"]:
                raise SlackError("hash_conflict")
            return self._store_view(view, previous)

    # ------------------------------------------------------------ response URL posts

    def _response(self, response_id: str, raw: bytes) -> _Reply:
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return _Reply(400, {"ok": False, "error": "invalid_payload"})
        problems = self._response_problems(body)
        with self._changed:
            post = ResponsePost(response_id, body, time.time(), accepted=not problems)
            self._response_posts.append(post)
            if not problems:
                self._apply_response(response_id, body)
            self._changed.notify_all()
        if problems:
            return _Reply(400, SlackError("invalid_blocks", problems).body())
        return _Reply(200, {"ok": True})

    def _response_problems(self, body: JsonDict) -> list[str]:
        blocks = body.get("blocks")
        if blocks is None:
            return []
        if not isinstance(blocks, list):
            return [_problem("must provide an array", "/blocks")]
        return blocks_problems(blocks, limit=MESSAGE_BLOCKS_MAX, pointer="/blocks")

    def _apply_response(self, response_id: str, body: JsonDict) -> None:
        target = self._response_targets.get(response_id)
        if target is None or target.channel is None:
            return
        original = (target.channel, target.message_ts or "")
        if body.get("delete_original") and original in self._messages:
            del self._messages[original]
        elif body.get("replace_original") and original in self._messages:
            message = self._messages[original]
            message.text = str(body.get("text", ""))
            message.blocks = body.get("blocks") or []
            message.edited = True
        elif body.get("response_type") == "in_channel":
            ts = self._next_ts()
            self._messages[(target.channel, ts)] = Message(
                target.channel,
                ts,
                str(body.get("text", "")),
                body.get("blocks") or [],
                thread_ts=body.get("thread_ts"),
            )
