"""Slack's Socket Mode endpoint: a local WebSocket server (RFC 6455) for slack_sdk's clients.

`FakeSlack(socket_mode_url=server.url)` hands its URL out through apps.connections.open.
A client that connects is greeted with `hello`; the test then sends envelopes as Slack
wraps its requests (`slash_commands`, `interactive`, `events_api`) and waits for the acks
the client sends back on the same connection. Client frames must be masked, server frames
are not; pings are answered, fragmented messages reassembled, close handshakes honoured.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.slack_records import APP_ID

JsonDict = dict[str, Any]

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LINK_PATH = "/link/"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
DATA_OPCODES = (OP_TEXT, OP_BINARY)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

MAX_MESSAGE = 1024 * 1024
MAX_HANDSHAKE = 16 * 1024
RECV_SIZE = 64 * 1024

# Interactive payloads whose ack may carry a response (errors, a new view, options).
RESPONDING_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


def accept_value(key: str) -> str:
    """The Sec-WebSocket-Accept answer to a client's Sec-WebSocket-Key."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame, as a server sends them."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


def unmask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    pad = (key * (len(data) // 4 + 1))[: len(data)]
    value = int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")
    return value.to_bytes(len(data), "big")


def responds_in_ack(type: str, payload: JsonDict) -> bool:
    """Whether Slack reads a payload in the ack of this kind of envelope."""
    if type == "slash_commands":
        return True
    if type == "interactive":
        return payload.get("type") in RESPONDING_INTERACTIONS
    return False


class ConnectionClosed(Exception):
    """The client went away (EOF or a reset) without a close frame."""


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass
class Ack:
    """What the client sent back for an envelope; `payload` is None for a bare ack."""

    envelope_id: str
    payload: JsonDict | None
    at: float
    raw: str


class _Connection:
    def __init__(self, server: FakeSocketMode, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number
        self.path = ""
        self.headers: dict[str, str] = {}
        self.open = False
        self._buffer = bytearray()
        self._send_lock = threading.Lock()
        self._close_sent = False
        self.thread = threading.Thread(
            target=self._run, name=f"fake-socket-mode-{number}", daemon=True
        )

    # ------------------------------------------------------------ reading

    def _fill(self) -> None:
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            raise ConnectionClosed
        self._buffer += chunk

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _read_request(self) -> bytes | None:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HANDSHAKE:
                return None
            self._fill()
        end = self._buffer.index(b"\r\n\r\n") + 4
        return self._read(end)

    def _read_frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read(2)
        fin, opcode, masked = bool(first & 0x80), first & 0x0F, bool(second & 0x80)
        if first & 0x70:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        if not masked:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
        if opcode >= OP_CLOSE and (length > 125 or not fin):
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "invalid control frame")
        if length > self.server.max_message:
            raise ProtocolError(CLOSE_TOO_BIG, "message too big")
        key = self._read(4)
        return fin, opcode, unmask(self._read(length), key)

    # ------------------------------------------------------------ writing

    def send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if self._close_sent:
                raise ConnectionClosed
            if opcode == OP_CLOSE:
                self._close_sent = True
            self.sock.sendall(encode_frame(opcode, payload))

    def send_close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(OSError, ConnectionClosed):
            self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120])

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ the session

    def _run(self) -> None:
        try:
            if self._handshake():
                self.server._opened(self)
                self._receive()
        except ProtocolError as problem:
            self.server._note_error(self, str(problem))
            self.send_close(problem.code, problem.reason)
        except (ConnectionClosed, OSError):
            if not self._close_sent:
                self.server._count("dropped")
        except Exception as exc:  # a bug in the fake must surface in the test's report
            self.server._note_error(self, f"fake_socket_mode error: {exc!r}")
            self.send_close(1011, "internal error")
        finally:
            self.shutdown()
            self.sock.close()
            self.server._closed(self)

    def _refuse(self, status: str, why: str) -> bool:
        body = why.encode("utf-8")
        response = (
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        with contextlib.suppress(OSError):
            self.sock.sendall(response + body)
        self.server._note_error(self, f"handshake refused ({status}): {why}")
        return False

    def _handshake(self) -> bool:
        raw = self._read_request()
        if raw is None:
            return self._refuse("431 Request Header Fields Too Large", "handshake too long")
        request_line, *lines = raw.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
            return self._refuse("400 Bad Request", f"bad request line {request_line!r}")
        self.path = parts[1]
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()
        url = urlsplit(self.path)
        if url.path != LINK_PATH:
            return self._refuse("404 Not Found", f"no WebSocket at {url.path}")
        if parse_qs(url.query).get("ticket") != [self.server.ticket]:
            return self._refuse("401 Unauthorized", "missing or unknown ticket")
        problem = self._header_problem()
        if problem:
            return self._refuse("400 Bad Request", problem)
        response = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_value(self.headers['sec-websocket-key'])}\r\n"
            "\r\n"
        )
        self.sock.sendall(response.encode("ascii"))
        return True

    def _header_problem(self) -> str | None:
        headers = self.headers
        if headers.get("upgrade", "").lower() != "websocket":
            return "Upgrade: websocket is missing"
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        if "upgrade" not in tokens:
            return "Connection: Upgrade is missing"
        if headers.get("sec-websocket-version") != "13":
            return "Sec-WebSocket-Version must be 13"
        try:
            key = base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 16:
            return "Sec-WebSocket-Key must be 16 bytes in base64"
        return None

    def _receive(self) -> None:
        kind: int | None = None
        parts: list[bytes] = []
        size = 0
        while True:
            fin, opcode, data = self._read_frame()
            if opcode == OP_PING:
                self.server._count("pings")
                self.send(OP_PONG, data)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self._on_close(data)
                return
            if opcode == OP_CONTINUATION:
                if kind is None:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
            elif opcode in DATA_OPCODES:
                if kind is not None:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "expected a continuation frame")
                kind = opcode
            else:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            parts.append(data)
            size += len(data)
            if size > self.server.max_message:
                raise ProtocolError(CLOSE_TOO_BIG, "message too big")
            if fin:
                self._deliver(kind, b"".join(parts))
                kind, parts, size = None, [], 0

    def _deliver(self, kind: int, data: bytes) -> None:
        if kind == OP_BINARY:
            self.server._note_error(self, f"unexpected binary message ({len(data)} bytes)")
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(CLOSE_INVALID_DATA, "text is not UTF-8") from None
        self.server._received(text)

    def _on_close(self, data: bytes) -> None:
        if len(data) == 1:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "truncated close frame")
        code = struct.unpack("!H", data[:2])[0] if data else 1005
        self.send_close(CLOSE_NORMAL if code == 1005 else code)


class FakeSocketMode:
    """One app's Socket Mode endpoint; `url` is what apps.connections.open should return."""

    def __init__(self, *, app_id: str = APP_ID, max_message: int = MAX_MESSAGE) -> None:
        self.app_id = app_id
        self.max_message = max_message
        self.ticket = secrets.token_hex(16)
        self._changed = threading.Condition()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: list[_Connection] = []
        self._acks: list[Ack] = []
        self._messages: list[str] = []
        self._errors: list[str] = []
        self._counts: dict[str, int] = {"connections": 0, "pings": 0, "dropped": 0}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeSocketMode:
        if self._listener is None:
            self._stopping.clear()
            listener = socket.create_server(("127.0.0.1", 0))
            listener.settimeout(0.05)
            self._listener = listener
            self._accepting = threading.Thread(
                target=self._accept_loop, name="fake-socket-mode", daemon=True
            )
            self._accepting.start()
        return self

    def stop(self) -> None:
        """Close every connection (1001, going away) and the listening socket."""
        self._stopping.set()
        if self._accepting is not None:
            self._accepting.join(5)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._changed:
            connections = list(self._connections)
        for connection in connections:
            connection.send_close(CLOSE_GOING_AWAY, "server stopping")
            connection.shutdown()
        for connection in connections:
            connection.thread.join(5)

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("FakeSocketMode is not started")
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{LINK_PATH}?ticket={self.ticket}&app_id={self.app_id}"

    def _accept_loop(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stopping.is_set():
            try:
                sock, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._changed:
                self._counts["connections"] += 1
                connection = _Connection(self, sock, self._counts["connections"])
                self._connections.append(connection)
            connection.thread.start()

    # ------------------------------------------------------------ connection state

    @property
    def connected(self) -> bool:
        with self._changed:
            return any(c.open for c in self._connections)

    def connections(self) -> int:
        """How many clients are connected (handshake done, not closed) right now."""
        with self._changed:
            return sum(1 for c in self._connections if c.open)

    def wait_connected(self, timeout: float = 10.0) -> None:
        self._wait(lambda: self.connections() > 0, timeout, "a client to connect")

    def wait_disconnected(self, timeout: float = 10.0) -> None:
        self._wait(lambda: self.connections() == 0, timeout, "every client to disconnect")

    def errors(self) -> list[str]:
        """Refused handshakes and protocol errors, for reports."""
        with self._changed:
            return list(self._errors)

    def count(self, name: str) -> int:
        """`connections` accepted so far, `pings` answered, or connections `dropped`
        without a close frame (slack_sdk's builtin client closes its socket that way)."""
        with self._changed:
            return self._counts[name]

    def _opened(self, connection: _Connection) -> None:
        """`hello` first: nothing is sent to a client before it."""
        self._send_to(connection, self._hello(self.connections() + 1))
        with self._changed:
            connection.open = True
            self._changed.notify_all()

    def _closed(self, connection: _Connection) -> None:
        with self._changed:
            connection.open = False
            if connection in self._connections:
                self._connections.remove(connection)
            self._changed.notify_all()

    def _note_error(self, connection: _Connection, error: str) -> None:
        with self._changed:
            self._errors.append(f"connection {connection.number}: {error}")
            self._changed.notify_all()

    def _count(self, name: str) -> None:
        with self._changed:
            self._counts[name] += 1

    # ------------------------------------------------------------ messages to the client

    def _hello(self, count: int) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _send_to(self, connection: _Connection, message: JsonDict) -> None:
        connection.send(OP_TEXT, json.dumps(message).encode("utf-8"))

    def send_json(self, message: JsonDict) -> None:
        """A text frame to the newest connected client, as Slack sends one link a message."""
        with self._changed:
            live = [c for c in self._connections if c.open]
        if not live:
            raise AssertionError(f"no client is connected; errors: {self.errors() or 'none'}")
        self._send_to(live[-1], message)

    def send_envelope(
        self,
        type: str,
        payload: JsonDict,
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Wrap `payload` as Slack does for `slash_commands`, `interactive` or `events_api`
        and send it; returns the envelope id the client is to ack."""
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = responds_in_ack(type, payload)
        envelope: JsonDict = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self.send_json(envelope)
        return envelope_id

    # ------------------------------------------------------------ messages from the client

    def _received(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            message = None
        with self._changed:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                payload = message.get("payload")
                self._acks.append(
                    Ack(
                        message["envelope_id"],
                        payload if isinstance(payload, dict) else None,
                        time.time(),
                        text,
                    )
                )
            else:
                self._messages.append(text)
            self._changed.notify_all()

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        with self._changed:
            return [a for a in self._acks if envelope_id in (None, a.envelope_id)]

    def messages(self) -> list[str]:
        """Text frames from clients that were not acks."""
        with self._changed:
            return list(self._messages)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> Ack:
        self._wait(lambda: self.acks(envelope_id), timeout, f"the ack of envelope {envelope_id}")
        return self.acks(envelope_id)[0]

    def _wait(self, check: Callable[[], object], timeout: float, what: str) -> None:
        """Until `check()` is truthy; it may take the (reentrant) lock again."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    acked = [a.envelope_id for a in self._acks]
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; "
                        f"acks so far: {acked or 'none'}; errors: {self._errors or 'none'}"
                    )
                self._changed.wait(remaining)
