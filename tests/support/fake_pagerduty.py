"""A local PagerDuty Events API v2 endpoint for tests, with incident state and failure injection.

It answers ``POST /v2/enqueue`` the way https://events.pagerduty.com does: events are checked
against the documented rules ("Send an Alert Event", "Events API v2 Overview"), accepted ones
get ``202`` and move the alert with their ``dedup_key`` through triggered, acknowledged and
resolved, refused ones get ``400`` with PagerDuty's error body.

It speaks HTTPS only, as PagerDuty does (and as the ``pagerduty`` client insists on), with a
certificate for ``127.0.0.1`` from a test CA made by ``trustme``. ``trust_env()`` writes that
CA to a file and gives the environment that makes HTTPS clients trust it the standard way:
``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import copy
import json
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import trustme

ENQUEUE_PATH = "/v2/enqueue"
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_BODY_BYTES = 512 * 1024
OPTIONAL_PAYLOAD_STRINGS = ("component", "group", "class")
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
HANDSHAKE_TIMEOUT = 5.0

IncidentState = Literal["triggered", "acknowledged", "resolved"]
JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One request to ``/v2/enqueue``: its decoded body, the status answered and when."""

    body: JsonObject
    status: int
    at: float
    response: JsonObject = field(default_factory=dict)

    @property
    def action(self) -> str | None:
        action = self.body.get("event_action")
        return action if isinstance(action, str) else None

    @property
    def dedup_key(self) -> str | None:
        key = self.response.get("dedup_key", self.body.get("dedup_key"))
        return key if isinstance(key, str) else None

    @property
    def accepted(self) -> bool:
        return self.status == HTTPStatus.ACCEPTED


@dataclass
class Incident:
    """The alert/incident that a trigger opened, and what later events did to it."""

    dedup_key: str
    state: IncidentState
    triggers: int
    payload: JsonObject
    links: list[JsonObject]
    history: list[str]
    number: int
    routing_key: str = ""

    @property
    def is_open(self) -> bool:
        return self.state != "resolved"


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: int | None


class EventRejected(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _is_blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()


def _routing_key_errors(body: JsonObject, known: frozenset[str] | None) -> list[str]:
    key = body.get("routing_key")
    if key is None or key == "":
        return ["'routing_key' is missing or blank"]
    if not isinstance(key, str):
        return ["'routing_key' must be a string"]
    errors = []
    if len(key) != ROUTING_KEY_LENGTH:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if not key.isascii() or not key.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    if not errors and known is not None and key not in known:
        errors.append("Invalid routing key")
    return errors


def _action_errors(body: JsonObject) -> list[str]:
    action = body.get("event_action")
    if action is None or action == "":
        return ["'event_action' is missing or blank"]
    if action not in ACTIONS:
        return ["'event_action' must be one of trigger, acknowledge or resolve"]
    return []


def _dedup_key_errors(body: JsonObject) -> list[str]:
    key = body.get("dedup_key")
    needs_key = body.get("event_action") in ("acknowledge", "resolve")
    if key is None or key == "":
        return ["'dedup_key' is missing or blank"] if needs_key else []
    if not isinstance(key, str):
        return ["'dedup_key' must be a string"]
    if len(key) > MAX_DEDUP_KEY:
        return ["'dedup_key' is too long (maximum is 255 characters)"]
    return []


def _timestamp_errors(payload: JsonObject) -> list[str]:
    if "timestamp" not in payload:
        return []
    stamp = payload["timestamp"]
    if not isinstance(stamp, str):
        return ["'payload.timestamp' must be an ISO 8601 string"]
    try:
        datetime.fromisoformat(stamp)
    except ValueError:
        return ["'payload.timestamp' is not a valid ISO 8601 timestamp"]
    return []


def _summary_errors(payload: JsonObject) -> list[str]:
    summary = payload.get("summary")
    if _is_blank(summary):
        return ["'payload.summary' is missing or blank"]
    if len(summary) > MAX_SUMMARY:
        return ["'payload.summary' is too long (maximum is 1024 characters)"]
    return []


def _payload_errors(body: JsonObject) -> list[str]:
    if body.get("event_action") != "trigger":
        return []
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return ["'payload' is missing or is not an object"]
    errors = _summary_errors(payload)
    if _is_blank(payload.get("source")):
        errors.append("'payload.source' is missing or blank")
    severity = payload.get("severity")
    if severity is None or severity == "":
        errors.append("'payload.severity' is missing or blank")
    elif severity not in SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning or info")
    errors += _timestamp_errors(payload)
    for name in OPTIONAL_PAYLOAD_STRINGS:
        if name in payload and not isinstance(payload[name], str):
            errors.append(f"'payload.{name}' must be a string")
    return errors


def _context_errors(
    body: JsonObject, name: str, required: str, optional: tuple[str, ...]
) -> list[str]:
    if name not in body:
        return []
    items = body[name]
    if not isinstance(items, list):
        return [f"'{name}' must be an array of objects"]
    errors = []
    for index, item in enumerate(items):
        where = f"'{name}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}' must be an object")
            continue
        if _is_blank(item.get(required)):
            errors.append(f"{where}.{required}' is missing or blank")
        for key in optional:
            if key in item and not isinstance(item[key], str):
                errors.append(f"{where}.{key}' must be a string")
    return errors


def _client_errors(body: JsonObject) -> list[str]:
    return [
        f"'{name}' must be a string"
        for name in ("client", "client_url")
        if name in body and not isinstance(body[name], str)
    ]


def validate_event(body: object, routing_keys: frozenset[str] | None = None) -> list[str]:
    """Every reason PagerDuty would refuse this event body; empty when it is valid."""
    if not isinstance(body, dict):
        return ["Event object must be a JSON object"]
    return [
        *_routing_key_errors(body, routing_keys),
        *_action_errors(body),
        *_dedup_key_errors(body),
        *_payload_errors(body),
        *_client_errors(body),
        *_context_errors(body, "links", "href", ("text",)),
        *_context_errors(body, "images", "src", ("href", "alt")),
    ]


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def decode_body(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EventRejected(["JSON parse error"]) from exc


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        if self._path() == ENQUEUE_PATH:
            self._send(*self.server.fake._enqueue(self._read_body()))
            return
        self._discard_body()
        self._send(*self.server.fake._elsewhere(enqueue=False))

    def do_GET(self) -> None:
        self._send(*self.server.fake._elsewhere(enqueue=self._path() == ENQUEUE_PATH))

    do_PUT = do_PATCH = do_DELETE = do_GET

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._discard_body()
            return None
        return self.rfile.read(length)

    def _discard_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)

    def _send(self, status: int, body: JsonObject, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, fake: FakePagerDuty, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        # The handshake happens in the request's own thread, so a client that never
        # finishes it (or speaks plain HTTP) holds up no one else.
        self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.fake = fake

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(HANDSHAKE_TIMEOUT)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError):
            return  # plain HTTP, an untrusted certificate, a client gone: nothing was asked
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            return  # a client that went away mid-request
        super().handle_error(request, client_address)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error_body(status: int, message: str | None = None) -> JsonObject:
    return {"status": "error", "message": message or _phrase(status)}


def _invalid_body(errors: list[str]) -> JsonObject:
    return {"status": "invalid event", "message": "Event object is invalid", "errors": errors}


def _success_body(dedup_key: str) -> JsonObject:
    return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def _failure_headers(failure: Failure) -> dict[str, str]:
    if failure.retry_after is None:
        return {}
    return {"Retry-After": str(failure.retry_after)}


class FakePagerDuty:
    """PagerDuty's Events API v2 over HTTPS on ``127.0.0.1``, for the ``pagerduty`` client's
    ``base_url``."""

    def __init__(
        self,
        routing_keys: Collection[str] | None = None,
        port: int = 0,
        ca: trustme.CA | None = None,
    ) -> None:
        self.routing_keys = frozenset(routing_keys) if routing_keys is not None else None
        self.ca = ca or trustme.CA()
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._tls)
        self._port = port
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._events: list[Event] = []
        self._incidents: list[Incident] = []
        self._open: dict[tuple[str, str], Incident] = {}
        self._failures: deque[Failure] = deque()
        self._down = False

    def __enter__(self) -> FakePagerDuty:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake PagerDuty is not running")
        return f"https://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def trust_env(self, directory: Path) -> dict[str, str]:
        """Write the CA's certificate into ``directory``; the environment that trusts it."""
        path = directory / "fake-pagerduty-ca.pem"
        self.ca.cert_pem.write_to_path(path)
        return dict.fromkeys(CA_VARIABLES, str(path))

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Listen (on the same port again after a ``stop()``) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the fake PagerDuty is already running")
        self._server = _Server(self._port, self, self._tls)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-pagerduty-{self._port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; recorded events and incidents are kept."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)

    def clear(self) -> None:
        """Forget events, incidents, pending failures and the down flag."""
        with self._lock:
            self._events.clear()
            self._incidents.clear()
            self._open.clear()
            self._failures.clear()
            self._down = False

    def fail_next(self, times: int = 1, status: int = 500, retry_after: int | None = None) -> None:
        """Answer the next ``times`` enqueue requests with ``status`` and change nothing."""
        if times < 1:
            raise ValueError("times must be at least 1")
        if not 400 <= status <= 599:
            raise ValueError("an injected failure needs a 4xx or 5xx status")
        with self._lock:
            self._failures.extend([Failure(status, retry_after)] * times)

    def set_down(self, down: bool = True) -> None:
        """While down, every request is answered ``503 Service Unavailable``."""
        with self._lock:
            self._down = down

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    def events(self, action: str | None = None, dedup_key: str | None = None) -> list[Event]:
        """Every enqueue request in arrival order, refused and failed ones included."""
        with self._lock:
            events = list(self._events)
        return [
            event
            for event in events
            if (action is None or event.action == action)
            and (dedup_key is None or event.dedup_key == dedup_key)
        ]

    def incidents(self, dedup_key: str | None = None) -> list[Incident]:
        """Snapshots of every incident ever opened, oldest first."""
        with self._lock:
            found = [i for i in self._incidents if dedup_key is None or i.dedup_key == dedup_key]
            return copy.deepcopy(found)

    def incident(self, dedup_key: str) -> Incident | None:
        """A snapshot of the latest incident opened with this ``dedup_key``."""
        found = self.incidents(dedup_key)
        return found[-1] if found else None

    def wait_for(
        self, predicate_or_action: str | Callable[[list[Event]], bool], timeout: float = 5.0
    ) -> list[Event]:
        """Poll until an accepted event has this action, or until the predicate holds.

        Returns the matching accepted events for an action, all events for a predicate;
        raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self._poll(predicate_or_action)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no PagerDuty event matched {predicate_or_action!r}")
            time.sleep(0.01)

    def _poll(self, predicate_or_action: str | Callable[[list[Event]], bool]) -> list[Event] | None:
        if isinstance(predicate_or_action, str):
            found = [e for e in self.events(predicate_or_action) if e.accepted]
            return found or None
        events = self.events()
        return events if predicate_or_action(events) else None

    def _down_answer(self) -> tuple[int, JsonObject]:
        status = HTTPStatus.SERVICE_UNAVAILABLE
        return status, _error_body(status)

    def _elsewhere(self, enqueue: bool) -> tuple[int, JsonObject, dict[str, str]]:
        if self.is_down:
            return *self._down_answer(), {}
        if enqueue:
            status = HTTPStatus.METHOD_NOT_ALLOWED
            return status, _error_body(status), {"Allow": "POST"}
        return HTTPStatus.NOT_FOUND, _error_body(HTTPStatus.NOT_FOUND), {}

    def _enqueue(self, raw: bytes | None) -> tuple[int, JsonObject, dict[str, str]]:
        body, errors = self._decode(raw)
        with self._lock:
            if self._down:
                return self._record_down(body)
            if self._failures:
                return self._record_failure(body, self._failures.popleft())
            errors = errors or validate_event(body, self.routing_keys)
            if errors or not isinstance(body, dict):
                return self._record(body, HTTPStatus.BAD_REQUEST, _invalid_body(errors))
            dedup_key = self._apply(body)
            return self._record(body, HTTPStatus.ACCEPTED, _success_body(dedup_key))

    def _decode(self, raw: bytes | None) -> tuple[object, list[str]]:
        if raw is None:
            return {}, ["Event payload is larger than the 512 KB limit"]
        try:
            return decode_body(raw), []
        except EventRejected as rejected:
            return {}, rejected.errors

    def _record(
        self, body: object, status: int, response: JsonObject, headers: dict[str, str] | None = None
    ) -> tuple[int, JsonObject, dict[str, str]]:
        recorded = body if isinstance(body, dict) else {}
        self._events.append(Event(recorded, int(status), time.time(), response))
        return int(status), response, headers or {}

    def _record_down(self, body: object) -> tuple[int, JsonObject, dict[str, str]]:
        status, response = self._down_answer()
        return self._record(body, status, response)

    def _record_failure(
        self, body: object, failure: Failure
    ) -> tuple[int, JsonObject, dict[str, str]]:
        message = f"Injected failure: {failure.status} {_phrase(failure.status)}"
        response = _error_body(failure.status, message)
        return self._record(body, failure.status, response, _failure_headers(failure))

    def _apply(self, body: JsonObject) -> str:
        action = body["event_action"]
        if action == "trigger":
            return self._trigger(body)
        self._follow_up(body, action)
        return body["dedup_key"]

    def _trigger(self, body: JsonObject) -> str:
        dedup_key = body.get("dedup_key") or uuid.uuid4().hex
        key = (body["routing_key"], dedup_key)
        incident = self._open.get(key)
        if incident is None:
            incident = self._open_incident(body, dedup_key)
            self._open[key] = incident
        else:
            incident.triggers += 1
            incident.history.append("trigger")
        return dedup_key

    def _open_incident(self, body: JsonObject, dedup_key: str) -> Incident:
        incident = Incident(
            dedup_key=dedup_key,
            state="triggered",
            triggers=1,
            payload=copy.deepcopy(body["payload"]),
            links=copy.deepcopy(body.get("links", [])),
            history=["trigger"],
            number=len(self._incidents) + 1,
            routing_key=body["routing_key"],
        )
        self._incidents.append(incident)
        return incident

    def _follow_up(self, body: JsonObject, action: str) -> None:
        key = (body["routing_key"], body["dedup_key"])
        incident = self._open.get(key)
        if incident is None:
            return
        incident.history.append(action)
        if action == "acknowledge":
            incident.state = "acknowledged"
        else:
            incident.state = "resolved"
            del self._open[key]
