"""The WSGI app of `escbot serve --http`: Slack's requests at POST /slack/events, and GET
routes beside it (/healthz).

A POST is checked before anything parses its body: its signature first (401 when the
timestamp or signature is missing, malformed, stale or wrong), so a request without the
secret costs one HMAC at most; then its shape (`bot.slack.payloads`, 400). Only then does
Bolt see it, parsed, through the request and response types of its WSGI adapter. Every
refusal leaves its reason in the environ (`NOTE`), for the server's access-log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse

from bot.slack import payloads

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("escbot.http")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
NOTE = "escbot.note"
MAX_AGE = 5 * 60  # seconds: Slack's own rule for a request's timestamp

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TEXT = ["text/plain; charset=utf-8"]

Health = Callable[[], dict[str, str]]
Answer = tuple[int, dict[str, Sequence[str]], str]
Route = Callable[[], Answer]


def _json(status: int, data: object) -> Answer:
    return status, {"content-type": ["application/json"]}, json.dumps(data)


class SlackFront:
    def __init__(self, app: App, signing_secret: str, health: Health) -> None:
        self.app = app
        self.secret = signing_secret.encode()
        self.health = health
        self.routes: dict[str, Route] = {HEALTH_PATH: self._healthz}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, headers, body = self._answer(environ)
        except Exception:
            log.exception(
                "answering %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            environ[NOTE] = "failed inside the bot"
            status, headers, body = _json(500, {"error": "internal error"})
        response = WsgiHttpResponse(status, headers, body)
        start_response(response.status, response.get_headers())
        return response.get_body()

    def _answer(self, environ: WSGIEnvironment) -> Answer:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if path == EVENTS_PATH:
            if method != "POST":
                return 405, {"allow": ["POST"], "content-type": _TEXT}, "use POST"
            return self._event(environ)
        route = self.routes.get(path)
        if route is None:
            return 404, {"content-type": _TEXT}, "not found"
        if method != "GET":
            return 405, {"allow": ["GET"], "content-type": _TEXT}, "use GET"
        return route()

    def _event(self, environ: WSGIEnvironment) -> Answer:
        # waitress has read the whole body and checked Content-Length before calling us.
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        refused = self._unsigned(
            body,
            environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
            environ.get("HTTP_X_SLACK_SIGNATURE"),
        )
        if refused is not None:
            environ[NOTE] = refused
            return _json(401, {"error": "invalid request"})
        content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip() or None
        try:
            payload = payloads.parse(body, content_type)
        except payloads.Malformed as problem:
            environ[NOTE] = str(problem)
            return _json(400, {"error": f"malformed request: {problem}"})
        request = WsgiHttpRequest(environ)
        # Bolt is handed the parsed payload. Its "socket_mode" is the mode for a request
        # whose body arrives parsed and whose origin is already proven: Bolt then skips
        # its own signature check (done above) and keeps the dict for lazy listeners.
        response = self.app.dispatch(
            BoltRequest(
                body=payload,
                query=request.query_string,
                headers=request.get_headers(),
                mode="socket_mode",
            )
        )
        return response.status, response.headers, response.body

    def _unsigned(self, body: bytes, timestamp: str | None, signature: str | None) -> str | None:
        """Why the request is not proven to come from Slack; None when it is.

        Slack's scheme (HMAC-SHA256 of `v0:{timestamp}:{body}`) over the body's bytes.
        Not slack_sdk's SignatureVerifier: it calls int() on the timestamp and decodes
        the body as UTF-8 before checking anything, and raises on either."""
        if not timestamp or not _TIMESTAMP.fullmatch(timestamp):
            return "missing or malformed X-Slack-Request-Timestamp"
        if not signature or not _SIGNATURE.fullmatch(signature):
            return "missing or malformed X-Slack-Signature"
        if abs(time.time() - int(timestamp)) > MAX_AGE:
            return "stale X-Slack-Request-Timestamp"
        base = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "bad signature"
        return None

    def _healthz(self) -> Answer:
        checks = self.health()
        ok = all(value == "ok" for value in checks.values())
        return _json(200 if ok else 503, {"ok": ok, **checks})
