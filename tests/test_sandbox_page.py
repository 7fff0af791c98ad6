"""The sandbox page's own HTTP API: what it serves, what it shows whom, and bad input
answered with a clear message that changes nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from bot.sandbox.demo import ADMIN, OPERATOR, STRANGER
from bot.sandbox.page import SandboxPage
from bot.sandbox.signed import SignedSender
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_records import BOT_ID, BOT_USER_ID
from bot.sandbox.workspace import Workspace

CHANNELS = {"C0TRIAGE": "triage", "C0REVIEW": "review"}
CARD = [
    {"type": "header", "text": {"type": "plain_text", "text": "Approval needed: refund"}},
    {
        "type": "actions",
        "block_id": "escalation",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "escalation.approve",
                "value": "{}",
                "style": "primary",
            }
        ],
    },
]


@pytest.fixture
def slack() -> Iterator[SandboxSlack]:
    with SandboxSlack() as running:
        yield running


@pytest.fixture
def page(slack: SandboxSlack) -> SandboxPage:
    # A bot that is not there: port 9 on this machine refuses the connection.
    bot = SignedSender("http://127.0.0.1:9/slack/events", "secret", timeout=2)
    return SandboxPage(Workspace(slack, bot, [OPERATOR, ADMIN, STRANGER], CHANNELS))


def call(
    page: SandboxPage, method: str, path: str, body: bytes = b"", query: str = ""
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    content = b"".join(page(environ, start_response))  # type: ignore[arg-type]
    return answer["status"], answer["headers"], content


def post(page: SandboxPage, path: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status, _, content = call(page, "POST", path, json.dumps(data).encode())
    return status, json.loads(content)


def state(page: SandboxPage, user: str = "") -> dict[str, Any]:
    status, _, content = call(page, "GET", "/api/state", query=f"user={user}")
    assert status == "200 OK", content
    result: dict[str, Any] = json.loads(content)
    return result


def test_the_page_and_its_files_are_served(page: SandboxPage) -> None:
    status, headers, content = call(page, "GET", "/")
    assert status == "200 OK" and headers["Content-Type"].startswith("text/html")
    assert b"/static/sandbox.js" in content
    for path in ("/static/sandbox.js", "/static/sandbox.css"):
        assert call(page, "GET", path)[0] == "200 OK"
    assert call(page, "GET", "/nothing")[0] == "404 Not Found"
    assert call(page, "GET", "/api/say")[0] == "405 Method Not Allowed"


def test_a_first_visit_is_the_operator_and_sees_the_channels(page: SandboxPage) -> None:
    seen = state(page)
    assert seen["me"] == OPERATOR.user_id
    assert [p["role"] for p in seen["people"]] == ["operator", "admin", "stranger"]
    assert [(c["id"], c["name"], c["messages"]) for c in seen["channels"]] == [
        ("C0TRIAGE", "triage", []),
        ("C0REVIEW", "review", []),
    ]
    assert seen["modal"] is None


def test_cards_threads_and_reactions_are_drawn(page: SandboxPage, slack: SandboxSlack) -> None:
    card = slack.seed_message("C0TRIAGE", "card", user=BOT_USER_ID, bot_id=BOT_ID, blocks=CARD)
    slack.seed_message("C0TRIAGE", "on it", user=OPERATOR.user_id, thread_ts=card.ts)
    (drawn,) = state(page, STRANGER.user_id)["channels"][0]["messages"]
    assert drawn["bot"] and drawn["author"] == "escbot"
    assert "Approval needed: refund" in drawn["html"]
    assert 'class="bk-button bk-primary"' in drawn["html"]
    (reply,) = drawn["replies"]
    assert reply["author"] == OPERATOR.name and "on it" in reply["html"]


@pytest.mark.parametrize(
    ("path", "data", "error"),
    [
        ("/api/say", {"user": "U0NOBODY", "channel": "C0TRIAGE", "text": "hi"}, "U0NOBODY"),
        ("/api/say", {"user": OPERATOR.user_id, "channel": "C0ELSE", "text": "hi"}, "C0ELSE"),
        ("/api/say", {"user": OPERATOR.user_id, "channel": "C0TRIAGE"}, "text is missing"),
        (
            "/api/click",
            {"user": OPERATOR.user_id, "channel": "C0TRIAGE", "ts": "1.000001", "action": {}},
            "no message 1.000001",
        ),
        ("/api/submit", {"user": OPERATOR.user_id, "view_id": "V1", "values": {}}, "no modal"),
        (
            "/api/reply",
            {"user": OPERATOR.user_id, "channel": "C0TRIAGE", "thread_ts": "1.000001", "text": "x"},
            "no message",
        ),
    ],
)
def test_bad_input_is_refused_with_why_and_changes_nothing(
    page: SandboxPage, slack: SandboxSlack, path: str, data: dict[str, Any], error: str
) -> None:
    status, answer = post(page, path, data)
    assert status == "400 Bad Request"
    assert error in answer["error"]
    assert slack.messages() == [] and slack.calls() == []


def test_a_body_that_is_not_json_is_refused(page: SandboxPage) -> None:
    status, _, content = call(page, "POST", "/api/say", b"{not json")
    assert status == "400 Bad Request"
    assert json.loads(content) == {"error": "the body is not JSON"}


def test_a_bot_that_does_not_answer_is_said_to_the_person_alone(page: SandboxPage) -> None:
    status, _ = post(
        page, "/api/say", {"user": ADMIN.user_id, "channel": "C0TRIAGE", "text": "/agent help"}
    )
    assert status == "200 OK"
    (answer,) = state(page, ADMIN.user_id)["channels"][0]["messages"]
    assert answer["private"] and "The bot answered 0" in answer["html"]
    assert state(page, OPERATOR.user_id)["channels"][0]["messages"] == []


def test_an_unknown_slash_command_is_answered_here(page: SandboxPage) -> None:
    post(page, "/api/say", {"user": OPERATOR.user_id, "channel": "C0TRIAGE", "text": "/deploy"})
    (answer,) = state(page, OPERATOR.user_id)["channels"][0]["messages"]
    assert answer["private"] and "/deploy" in answer["html"]
