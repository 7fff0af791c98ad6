"""The sandbox's page: a WSGI app served by waitress. `GET /` is the page (plain HTML,
CSS and a little JavaScript from `static/`, no build step); it polls `GET /api/state`
and posts what the visitor does to `/api/…`, which `Workspace` turns into the signed
requests Slack would send the bot."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from waitress.server import TcpWSGIServer, create_server

from bot.sandbox.workspace import Workspace

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("escbot.sandbox")

STATIC = Path(__file__).parent / "static"
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/sandbox.css": ("sandbox.css", "text/css; charset=utf-8"),
    "/static/sandbox.js": ("sandbox.js", "text/javascript; charset=utf-8"),
}
MAX_BODY = 256 << 10

JsonDict = dict[str, Any]
Answer = tuple[str, str, bytes]


def _json(status: str, value: object) -> Answer:
    return status, "application/json", json.dumps(value).encode()


def _text(data: JsonDict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} is missing")
    return value


class SandboxPage:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.posts: dict[str, Callable[[JsonDict], None]] = {
            "/api/say": lambda d: workspace.say(
                _text(d, "user"), _text(d, "channel"), _text(d, "text")
            ),
            "/api/reply": lambda d: workspace.reply(
                _text(d, "user"), _text(d, "channel"), _text(d, "thread_ts"), _text(d, "text")
            ),
            "/api/click": lambda d: workspace.click(
                _text(d, "user"), _text(d, "channel"), _text(d, "ts"), _object(d, "action")
            ),
            "/api/submit": lambda d: workspace.submit(
                _text(d, "user"), _text(d, "view_id"), _object(d, "values")
            ),
            "/api/close": lambda d: workspace.close_view(_text(d, "user"), _text(d, "view_id")),
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, kind, body = self._answer(environ)
        except Exception:
            log.exception("sandbox page: %s", environ.get("PATH_INFO"))
            status, kind, body = _json("500 Internal Server Error", {"error": "failed"})
        start_response(
            status,
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    def _answer(self, environ: WSGIEnvironment) -> Answer:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if method == "GET" and path in FILES:
            name, kind = FILES[path]
            return "200 OK", kind, (STATIC / name).read_bytes()
        if method == "GET" and path == "/api/state":
            user = (parse_qs(environ.get("QUERY_STRING", "")).get("user") or [""])[0]
            user = user or next(iter(self.workspace.people))  # a first visit: the operator
            return self._do(lambda: self.workspace.snapshot(user))
        post = self.posts.get(path)
        if post is None:
            return "404 Not Found", "text/plain; charset=utf-8", b"not found"
        if method != "POST":
            return "405 Method Not Allowed", "text/plain; charset=utf-8", b"use POST"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            return _json("413 Payload Too Large", {"error": "too large"})
        try:
            data = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _json("400 Bad Request", {"error": "the body is not JSON"})
        if not isinstance(data, dict):
            return _json("400 Bad Request", {"error": "the body is not a JSON object"})
        return self._do(lambda: _done(post, data))

    def _do(self, work: Callable[[], object]) -> Answer:
        try:
            return _json("200 OK", work())
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return _json("400 Bad Request", {"error": str(message)})


def _done(post: Callable[[JsonDict], None], data: JsonDict) -> JsonDict:
    post(data)
    return {"ok": True}


def _object(data: JsonDict, name: str) -> JsonDict:
    value = data.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"{name} is missing")
    return value


class PageServer:
    """The page on host:port (0: a free port), served by a thread of its own."""

    def __init__(self, page: SandboxPage, host: str, port: int) -> None:
        # One server on one address (the stubs also allow the multi-socket kind).
        self.server = cast(
            TcpWSGIServer,
            create_server(page, host=host, port=port, threads=6, ident="escbot-sandbox"),
        )
        self.port = int(self.server.getsockname()[1])
        self.thread = threading.Thread(target=self.server.run, name="sandbox-page", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)
