"""A local Slack Web API (and response URLs) served over real HTTP for the real WebClient:
the stand-in for Slack that `escbot sandbox` runs the bot against, and the tests too.

Every call is recorded, message `ts` values are assigned like Slack's, Block Kit and
views are validated with `slack_sdk` models plus the limits Slack enforces on top of
them, and failures (429 with `Retry-After`, 5xx, a full outage) can be injected. Its
parts: `slack_records` (what it keeps), `block_checks`, `slack_wire` (HTTP) and
`slack_methods` (the Web API methods); the names tests use import from here.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from email.message import Message as HttpHeaders

from bot.sandbox.rate_limit import ChannelRateLimit
from bot.sandbox.slack_methods import SlackWebMethods
from bot.sandbox.slack_records import (
    Call,
    Ephemeral,
    JsonDict,
    Message,
    Params,
    ResponsePost,
    SlackError,
    _Failure,
    _Reply,
    _ResponseTarget,
)
from bot.sandbox.slack_wire import _bearer, _parse_ts, _Server, _string, parse_params


class FakeSlack(SlackWebMethods):
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
