"""`escbot serve --http`: every Slack request at POST /slack/events, and GET /healthz.

A threading server, so that a slow request never holds up a kill behind it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_bolt import App, BoltRequest, BoltResponse

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1 << 20

Health = Callable[[], dict[str, str]]


def _handler(app: App, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "escbot"

        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            if path != EVENTS_PATH:
                self._send(404, {"content-type": ["text/plain"]}, "not found")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"content-type": ["text/plain"]}, "too large")
                return
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            headers: dict[str, str | Sequence[str]] = {
                key.lower(): value for key, value in self.headers.items()
            }
            response: BoltResponse = app.dispatch(
                BoltRequest(body=body, query=query, headers=headers)
            )
            self._send(response.status, response.headers, response.body)

        def do_GET(self) -> None:
            if self.path.partition("?")[0] != HEALTH_PATH:
                self._send(404, {"content-type": ["text/plain"]}, "not found")
                return
            checks = health()
            ok = all(value == "ok" for value in checks.values())
            body = json.dumps({"ok": ok, **checks})
            self._send(200 if ok else 503, {"content-type": ["application/json"]}, body)

        def _send(self, status: int, headers: dict[str, Sequence[str]], body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            for key, values in headers.items():
                if key.lower() == "content-length":
                    continue
                for value in values:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets connections when a burst of clicks
    # arrives at once (everyone pressing Approve on the same card).
    request_queue_size = 128


class SlackHTTPServer:
    def __init__(self, app: App, host: str, port: int, health: Health) -> None:
        self.server = _Server((host, port), _handler(app, health))
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
