"""The fake Slack's HTTP side: request arguments read as Slack reads them (form or JSON,
JSON-encoded fields), Slack's `ts` format, and the threaded server that hands each
request to the fake."""

from __future__ import annotations

import contextlib
import json
from email.message import Message as HttpHeaders
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from bot.sandbox.slack_records import JSON_ENCODED_FIELDS, Params, SlackError, _Reply


class Handles(Protocol):
    """What the server hands each request to (the fake Slack)."""

    def _handle(self, path: str, query: str, raw: bytes, headers: HttpHeaders) -> _Reply: ...


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

    def __init__(self, fake: Handles) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
