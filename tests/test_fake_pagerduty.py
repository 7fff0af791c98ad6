"""The fake PagerDuty Events API v2, over HTTPS, driven through the real ``pagerduty`` client
and raw HTTP.

The failure-injection tests also pin down what ``pagerduty`` 7.2 (EventsApiV2Client) does when
the Events API fails: how often it retries each status, how long it would sleep and which
exception it raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pagerduty
import pagerduty.api_client
import pytest
import requests
from pagerduty import EventsApiV2Client

from tests.support.fake_pagerduty import FakePagerDuty

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "fedcba9876543210fedcba9876543210"
UNKNOWN_KEY = "ffffffffffffffffffffffffffffffff"
LINKS = [{"href": "https://escbot.example.com/decisions/42", "text": "Decision 42"}]
DETAILS = {"agent": "refund-bot", "amount": 1250.5, "reasons": ["over limit", "new customer"]}


def trust(monkeypatch: pytest.MonkeyPatch, fake: FakePagerDuty, directory: Path) -> None:
    """Make HTTPS clients in this process trust the fake's CA, the standard way."""
    for name, value in fake.trust_env(directory).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakePagerDuty]:
    with FakePagerDuty(routing_keys={ROUTING_KEY, OTHER_KEY}) as server:
        trust(monkeypatch, server, tmp_path)
        yield server


def make_client(fake: FakePagerDuty, routing_key: str = ROUTING_KEY) -> EventsApiV2Client:
    return EventsApiV2Client(routing_key, base_url=fake.url)


@pytest.fixture
def client(fake: FakePagerDuty) -> Iterator[EventsApiV2Client]:
    client = make_client(fake)
    client.sleep_timer = 0
    yield client
    client.close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's back-off sleeps, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(pagerduty.api_client.time, "sleep", recorded.append)
    return recorded


@pytest.fixture
def default_client(fake: FakePagerDuty, sleeps: list[float]) -> Iterator[EventsApiV2Client]:
    """A client with the package's default timers, whose sleeps land in ``sleeps``."""
    client = make_client(fake)
    yield client
    client.close()


def enqueue(fake: FakePagerDuty, body: Any) -> requests.Response:
    return requests.post(f"{fake.url}/v2/enqueue", json=body, timeout=5)


def trigger_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "decision-42",
        "payload": {"summary": "Refund over limit", "source": "refund-bot", "severity": "error"},
    }
    body.update(overrides)
    return body


def with_payload(**changes: Any) -> dict[str, Any]:
    body = trigger_body()
    body["payload"].update(changes)
    return body


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def statuses(fake: FakePagerDuty) -> list[int]:
    return [event.status for event in fake.events()]


def page(client: EventsApiV2Client, dedup_key: str | None = "decision-42") -> str:
    return client.trigger("Refund over limit", "refund-bot", dedup_key=dedup_key)


# The incident lifecycle through the client.


def test_trigger_opens_an_incident_with_links_and_details(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    key = client.trigger(
        "Refund of 1250.50 EUR needs a human",
        "refund-bot",
        dedup_key="decision-42",
        severity="warning",
        custom_details=DETAILS,
        links=LINKS,
    )

    assert key == "decision-42"
    incident = fake.incident(key)
    assert incident is not None
    assert incident.state == "triggered"
    assert incident.triggers == 1
    assert incident.number == 1
    assert incident.links == LINKS
    assert incident.routing_key == ROUTING_KEY
    assert incident.history == ["trigger"]
    assert incident.payload == {
        "summary": "Refund of 1250.50 EUR needs a human",
        "source": "refund-bot",
        "severity": "warning",
        "custom_details": DETAILS,
    }
    [event] = fake.events()
    assert event.status == 202
    assert event.body["routing_key"] == ROUTING_KEY
    assert event.response == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "decision-42",
    }


def test_trigger_without_dedup_key_gets_a_generated_one(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    first = page(client, dedup_key=None)
    second = page(client, dedup_key=None)

    assert len(first) == 32
    int(first, 16)
    assert first != second
    assert [i.dedup_key for i in fake.incidents()] == [first, second]
    assert [e.dedup_key for e in fake.events(dedup_key=first)] == [first]


def test_acknowledge_then_resolve(fake: FakePagerDuty, client: EventsApiV2Client) -> None:
    key = page(client)

    assert client.acknowledge(key) == key
    assert fake.incident(key).state == "acknowledged"
    assert client.resolve(key) == key

    incident = fake.incident(key)
    assert incident.state == "resolved"
    assert not incident.is_open
    assert incident.history == ["trigger", "acknowledge", "resolve"]
    assert [e.action for e in fake.events(dedup_key=key)] == ["trigger", "acknowledge", "resolve"]


def test_trigger_after_resolve_opens_a_new_incident(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    key = page(client)
    client.resolve(key)
    page(client)

    first, second = fake.incidents(key)
    assert (first.number, first.state) == (1, "resolved")
    assert (second.number, second.state, second.triggers) == (2, "triggered", 1)
    assert fake.incident(key) == second


def test_duplicate_trigger_while_open_is_deduplicated(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    key = page(client)
    client.trigger("Refund over limit, again", "refund-bot", dedup_key=key, severity="info")

    [incident] = fake.incidents()
    assert incident.triggers == 2
    assert incident.history == ["trigger", "trigger"]
    assert (incident.payload["summary"], incident.payload["severity"]) == (
        "Refund over limit",
        "critical",
    )
    _, second = fake.events(action="trigger", dedup_key=key)
    assert second.body["payload"]["summary"] == "Refund over limit, again"


def test_trigger_on_an_acknowledged_incident_keeps_it_acknowledged(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    key = page(client)
    client.acknowledge(key)
    page(client)

    [incident] = fake.incidents()
    assert (incident.state, incident.triggers) == ("acknowledged", 2)


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_follow_up_on_an_unknown_key_is_accepted_and_changes_nothing(
    fake: FakePagerDuty, client: EventsApiV2Client, action: str
) -> None:
    assert client.send_event(action, dedup_key="never-triggered") == "never-triggered"

    assert fake.incidents() == []
    assert statuses(fake) == [202]


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_follow_up_on_a_resolved_incident_is_dropped(
    fake: FakePagerDuty, client: EventsApiV2Client, action: str
) -> None:
    key = page(client)
    client.resolve(key)

    client.send_event(action, dedup_key=key)

    incident = fake.incident(key)
    assert incident.state == "resolved"
    assert incident.history == ["trigger", "resolve"]
    assert statuses(fake) == [202, 202, 202]


def test_follow_up_through_another_routing_key_is_dropped(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    key = page(client)
    other = make_client(fake, OTHER_KEY)

    other.resolve(key)

    assert fake.incident(key).state == "triggered"
    assert statuses(fake) == [202, 202]


# Validation, with raw HTTP.


INVALID_EVENTS = [
    pytest.param(
        without(trigger_body(), "routing_key"),
        "'routing_key' is missing or blank",
        id="missing-routing-key",
    ),
    pytest.param(
        trigger_body(routing_key="short"),
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        id="short-routing-key",
    ),
    pytest.param(
        trigger_body(routing_key="0123456789abcdef-0123456789abcde"),
        "'routing_key' cannot contain non-alphanumeric characters.",
        id="non-alphanumeric-routing-key",
    ),
    pytest.param(trigger_body(routing_key=UNKNOWN_KEY), "Invalid routing key", id="unknown-key"),
    pytest.param(
        trigger_body(event_action="escalate"),
        "'event_action' must be one of trigger, acknowledge or resolve",
        id="bad-event-action",
    ),
    pytest.param(
        without(trigger_body(), "event_action"),
        "'event_action' is missing or blank",
        id="missing-event-action",
    ),
    pytest.param(
        {"routing_key": ROUTING_KEY, "event_action": "acknowledge"},
        "'dedup_key' is missing or blank",
        id="acknowledge-without-dedup-key",
    ),
    pytest.param(
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": ""},
        "'dedup_key' is missing or blank",
        id="resolve-with-blank-dedup-key",
    ),
    pytest.param(
        trigger_body(dedup_key="k" * 256),
        "'dedup_key' is too long (maximum is 255 characters)",
        id="dedup-key-too-long",
    ),
    pytest.param(
        without(trigger_body(), "payload"),
        "'payload' is missing or is not an object",
        id="trigger-without-payload",
    ),
    pytest.param(with_payload(summary=""), "'payload.summary' is missing or blank", id="empty"),
    pytest.param(
        with_payload(summary="   "), "'payload.summary' is missing or blank", id="blank-summary"
    ),
    pytest.param(
        with_payload(summary="x" * 1025),
        "'payload.summary' is too long (maximum is 1024 characters)",
        id="summary-1025-characters",
    ),
    pytest.param(
        with_payload(severity="fatal"),
        "'payload.severity' must be one of critical, error, warning or info",
        id="bad-severity",
    ),
    pytest.param(
        without(trigger_body(), "payload", "severity"),
        "'payload.severity' is missing or blank",
        id="missing-severity",
    ),
    pytest.param(
        without(trigger_body(), "payload", "source"),
        "'payload.source' is missing or blank",
        id="missing-source",
    ),
    pytest.param(
        with_payload(timestamp="yesterday at noon"),
        "'payload.timestamp' is not a valid ISO 8601 timestamp",
        id="bad-timestamp",
    ),
    pytest.param(
        with_payload(timestamp="2025-13-01T00:00:00Z"),
        "'payload.timestamp' is not a valid ISO 8601 timestamp",
        id="impossible-timestamp",
    ),
    pytest.param(
        with_payload(component=42), "'payload.component' must be a string", id="component"
    ),
    pytest.param(
        trigger_body(links=[{"text": "no target"}]),
        "'links[0].href' is missing or blank",
        id="link-without-href",
    ),
    pytest.param(
        trigger_body(links={"href": "https://example.com"}),
        "'links' must be an array of objects",
        id="links-not-a-list",
    ),
    pytest.param(
        trigger_body(images=[{"href": "https://example.com", "alt": "chart"}]),
        "'images[0].src' is missing or blank",
        id="image-without-src",
    ),
    pytest.param(
        trigger_body(client=["escbot"]), "'client' must be a string", id="client-not-a-string"
    ),
    pytest.param([trigger_body()], "Event object must be a JSON object", id="array-body"),
]


@pytest.mark.parametrize(("body", "error"), INVALID_EVENTS)
def test_invalid_events_are_refused(fake: FakePagerDuty, body: Any, error: str) -> None:
    response = enqueue(fake, body)

    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [error],
    }
    assert fake.incidents() == []
    assert statuses(fake) == [400]


def test_every_error_is_reported_at_once(fake: FakePagerDuty) -> None:
    body = {"routing_key": "short", "event_action": "trigger", "payload": {"severity": "bad"}}

    errors = enqueue(fake, body).json()["errors"]

    assert errors == [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'payload.summary' is missing or blank",
        "'payload.source' is missing or blank",
        "'payload.severity' must be one of critical, error, warning or info",
    ]


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b'{"a": NaN}', b""])
def test_a_body_that_is_not_json_is_refused(fake: FakePagerDuty, raw: bytes) -> None:
    response = requests.post(f"{fake.url}/v2/enqueue", data=raw, timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"] == ["JSON parse error"]
    assert fake.events()[0].body == {}


def test_a_body_over_512_kb_is_refused(fake: FakePagerDuty) -> None:
    body = with_payload(custom_details={"blob": "x" * (512 * 1024)})

    response = enqueue(fake, body)

    assert response.status_code == 400
    assert response.json()["errors"] == ["Event payload is larger than the 512 KB limit"]


def test_the_documented_full_example_is_accepted(fake: FakePagerDuty) -> None:
    body = trigger_body(
        payload={
            "summary": "DISK at 99% on machine prod-datapipe03.example.com",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "severity": "critical",
            "source": "prod-datapipe03.example.com",
            "component": "mysql",
            "group": "prod-datapipe",
            "class": "disk",
            "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
        },
        client="Sample Monitoring Service",
        client_url="https://monitoring.service.com",
        links=[{"href": "http://pagerduty.example.com", "text": "An example link."}],
        images=[
            {"src": "https://example.com/chart.png", "href": "https://example.com", "alt": "x"}
        ],
    )

    response = enqueue(fake, body)

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "decision-42",
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(with_payload(summary="x" * 1024), id="summary-1024-characters"),
        pytest.param(trigger_body(dedup_key="k" * 255), id="dedup-key-255-characters"),
        pytest.param(with_payload(timestamp="2025-11-22T03:42:00Z"), id="timestamp-zulu"),
        pytest.param(with_payload(custom_details="plain text details"), id="details-string"),
        pytest.param(trigger_body(links=[{"href": "https://example.com"}]), id="link-no-text"),
        pytest.param(
            {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "x", "payload": 1},
            id="resolve-ignores-payload",
        ),
    ],
)
def test_edge_cases_that_are_accepted(fake: FakePagerDuty, body: dict[str, Any]) -> None:
    assert enqueue(fake, body).status_code == 202


# Failure injection, and what pagerduty 7.2 does about it.


def test_the_client_retries_a_500_twice_within_one_call(
    fake: FakePagerDuty, default_client: EventsApiV2Client, sleeps: list[float]
) -> None:
    fake.fail_next(times=2, status=500)

    key = page(default_client)

    assert statuses(fake) == [500, 500, 202]
    assert [i.dedup_key for i in fake.incidents()] == [key]
    assert sleeps == [3.0, 6.0]


def test_the_client_gives_up_after_the_third_500(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    fake.fail_next(times=3, status=500)

    with pytest.raises(pagerduty.ServerHttpError) as raised:
        page(client)

    assert raised.value.response.status_code == 500
    assert isinstance(raised.value, pagerduty.HttpError)
    assert statuses(fake) == [500, 500, 500]
    assert fake.incidents() == []


@pytest.mark.parametrize(
    ("status", "requests_made"),
    [(500, 3), (502, 5), (503, 7), (504, 7), (501, 1), (505, 1)],
)
def test_the_client_request_budget_per_server_error(
    fake: FakePagerDuty, client: EventsApiV2Client, status: int, requests_made: int
) -> None:
    """Every 5xx ends in a ServerHttpError (``status_code // 100 == 5``; pdpyras 5.4 divided
    with ``/`` and so singled out 500)."""
    fake.fail_next(times=20, status=status)

    with pytest.raises(pagerduty.HttpError) as raised:
        page(client)

    assert isinstance(raised.value, pagerduty.ServerHttpError)
    assert raised.value.response.status_code == status
    assert statuses(fake) == [status] * requests_made


def test_the_client_retries_429_without_limit_and_ignores_retry_after(
    fake: FakePagerDuty, default_client: EventsApiV2Client, sleeps: list[float]
) -> None:
    fake.fail_next(times=6, status=429, retry_after=30)

    page(default_client)

    assert statuses(fake) == [429] * 6 + [202]
    assert sleeps == [3.0, 6.0, 12.0, 24.0, 48.0, 96.0]


def test_a_429_retry_budget_makes_the_client_raise_an_http_error(
    fake: FakePagerDuty, client: EventsApiV2Client
) -> None:
    client.retry[429] = 2
    fake.fail_next(times=20, status=429)

    with pytest.raises(pagerduty.HttpError) as raised:
        page(client)

    assert not isinstance(raised.value, pagerduty.ServerHttpError)
    assert raised.value.response.status_code == 429
    assert statuses(fake) == [429, 429, 429]


def test_the_client_does_not_retry_an_invalid_event(fake: FakePagerDuty) -> None:
    client = make_client(fake, UNKNOWN_KEY)

    with pytest.raises(pagerduty.HttpError) as raised:
        page(client)

    assert not isinstance(raised.value, pagerduty.ServerHttpError)
    assert raised.value.response.status_code == 400
    assert raised.value.response.json()["errors"] == ["Invalid routing key"]
    assert statuses(fake) == [400]


def test_down_makes_the_client_raise_a_server_error_after_seven_requests(
    fake: FakePagerDuty, default_client: EventsApiV2Client, sleeps: list[float]
) -> None:
    fake.set_down(True)

    with pytest.raises(pagerduty.HttpError) as raised:
        page(default_client)

    assert isinstance(raised.value, pagerduty.ServerHttpError)
    assert raised.value.response.status_code == 503
    assert statuses(fake) == [503] * 7
    assert sleeps == [3.0, 6.0, 12.0, 24.0, 48.0, 96.0]
    assert fake.incidents() == []

    fake.set_down(False)
    page(default_client)
    assert fake.incident("decision-42").state == "triggered"


def test_an_unreachable_api_makes_the_client_raise_a_plain_error(
    fake: FakePagerDuty, default_client: EventsApiV2Client, sleeps: list[float]
) -> None:
    fake.stop()

    with pytest.raises(pagerduty.Error) as raised:
        page(default_client)

    assert not isinstance(raised.value, pagerduty.HttpError)
    assert raised.value.response is None
    assert isinstance(raised.value.__cause__, httpx2.ConnectError)
    assert sleeps == [3.0, 6.0, 12.0]


# HTTPS only, with the test CA.


def test_the_client_refuses_a_plain_http_base_url(fake: FakePagerDuty) -> None:
    with pytest.raises(pagerduty.UrlError):
        EventsApiV2Client(ROUTING_KEY, base_url=fake.url.replace("https://", "http://"))


def test_plain_http_gets_no_answer(fake: FakePagerDuty) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{fake.url.replace('https://', 'http://')}/v2/enqueue", json=trigger_body(), timeout=5
        )

    assert enqueue(fake, trigger_body()).status_code == 202  # the server is still fine
    assert statuses(fake) == [202]


def test_a_client_that_does_not_trust_the_test_ca_is_refused(
    fake: FakePagerDuty, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    system = requests.certs.where()
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"{fake.url}/v2/enqueue", json=trigger_body(), timeout=5, verify=system)
    monkeypatch.setenv("SSL_CERT_FILE", system)

    with make_client(fake) as client, pytest.raises(pagerduty.Error) as raised:
        page(client)

    assert raised.value.response is None
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value.__cause__)
    assert fake.events() == []


def test_an_injected_failure_answers_with_retry_after_and_changes_nothing(
    fake: FakePagerDuty,
) -> None:
    fake.fail_next(status=429, retry_after=30)

    refused = enqueue(fake, trigger_body())
    accepted = enqueue(fake, trigger_body())

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    assert refused.json() == {
        "status": "error",
        "message": "Injected failure: 429 Too Many Requests",
    }
    assert accepted.status_code == 202
    assert [i.triggers for i in fake.incidents()] == [1]
    assert [(e.status, e.action) for e in fake.events()] == [(429, "trigger"), (202, "trigger")]


def test_failures_queue_up_in_order(fake: FakePagerDuty) -> None:
    fake.fail_next(status=502)
    fake.fail_next(times=2, status=429)

    codes = [enqueue(fake, trigger_body()).status_code for _ in range(4)]

    assert codes == [502, 429, 429, 202]
    assert "Retry-After" not in enqueue(fake, trigger_body()).headers


@pytest.mark.parametrize(("times", "status"), [(0, 500), (1, 200), (1, 302)])
def test_fail_next_refuses_nonsense(fake: FakePagerDuty, times: int, status: int) -> None:
    with pytest.raises(ValueError):
        fake.fail_next(times=times, status=status)


def test_down_answers_every_path_with_503(fake: FakePagerDuty) -> None:
    fake.set_down(True)

    assert requests.get(f"{fake.url}/v2/enqueue", timeout=5).status_code == 503
    assert requests.post(f"{fake.url}/elsewhere", timeout=5).status_code == 503
    assert enqueue(fake, trigger_body()).status_code == 503
    assert statuses(fake) == [503]


# The server itself.


def test_other_paths_and_methods(fake: FakePagerDuty) -> None:
    assert requests.post(f"{fake.url}/v2/change/enqueue", json={}, timeout=5).status_code == 404
    assert requests.post(f"{fake.url}/enqueue", json={}, timeout=5).status_code == 404
    not_allowed = requests.get(f"{fake.url}/v2/enqueue", timeout=5)
    assert (not_allowed.status_code, not_allowed.headers["Allow"]) == (405, "POST")
    assert fake.events() == []


def test_url_start_stop_and_restart_on_the_same_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = FakePagerDuty()
    trust(monkeypatch, server, tmp_path)
    with pytest.raises(RuntimeError):
        _ = server.url

    with server:
        url = server.url
        assert url == f"https://127.0.0.1:{server.port}"
        assert not url.endswith("/")
        assert enqueue(server, trigger_body()).status_code == 202
        with pytest.raises(RuntimeError):
            server.start()

    assert not server.running
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{url}/v2/enqueue", json=trigger_body(), timeout=5)

    server.start()
    try:
        assert server.url == url
        assert enqueue(server, trigger_body()).status_code == 202
        assert server.incident("decision-42").triggers == 2
    finally:
        server.stop()


def test_clear_forgets_everything(fake: FakePagerDuty, client: EventsApiV2Client) -> None:
    page(client)
    fake.fail_next(times=3)
    fake.set_down(True)

    fake.clear()

    assert (fake.events(), fake.incidents(), fake.is_down) == ([], [], False)
    page(client)
    assert [i.number for i in fake.incidents()] == [1]


def later(delay: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(delay, action)
    timer.start()
    return timer


def test_wait_for_an_action(fake: FakePagerDuty, client: EventsApiV2Client) -> None:
    fake.fail_next()
    timer = later(0.05, lambda: page(client))

    [event] = fake.wait_for("trigger", timeout=5)

    timer.join()
    assert (event.status, event.dedup_key) == (202, "decision-42")
    assert statuses(fake) == [500, 202]


def test_wait_for_a_predicate(fake: FakePagerDuty, client: EventsApiV2Client) -> None:
    timer = later(0.05, lambda: page(client))

    events = fake.wait_for(lambda events: any(e.status == 202 for e in events))

    timer.join()
    assert [e.action for e in events] == ["trigger"]


def test_wait_for_times_out(fake: FakePagerDuty) -> None:
    enqueue(fake, {"event_action": "trigger"})

    with pytest.raises(TimeoutError):
        fake.wait_for("trigger", timeout=0.05)
