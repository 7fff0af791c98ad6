"""HTTP/1.1 written by hand on a socket, for what no client library sends: a half-sent
header, a negative Content-Length, a body that looks like a request, pipelined requests."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from tests.support.slack_requests import SlackRequests

EVENTS = "/slack/events"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A request; Content-Length is the body's unless `headers` says otherwise."""
    fields = {"Host": "127.0.0.1", "Content-Length": str(len(body))} | (headers or {})
    if method == "GET" and not body and "Content-Length" not in (headers or {}):
        del fields["Content-Length"]
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


def signed(slack: SlackRequests, body: bytes, content_type: str) -> bytes:
    """A POST to /slack/events signed as Slack signs it."""
    headers = slack.signed_headers(body, content_type)
    return request("POST", EVENTS, body, headers)


class RawConnection:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> RawResponse:
        """The next response on the connection (its body by Content-Length)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a response (got {self.buffer!r})")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed inside a response body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(int(status_line.split()[1]), headers, body)

    def closed_by_server(self, timeout: float) -> bool:
        """True once the server closes the connection (within `timeout`), having sent
        nothing more; False if it stays open that long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self._fill():
                    return not self.buffer
            except TimeoutError:
                return False
            except ConnectionResetError:
                return not self.buffer
        return False

    def close(self) -> None:
        self.sock.close()
