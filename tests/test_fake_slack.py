"""The fake Slack Web API answers the real WebClient like Slack; signed requests verify."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.sandbox.rate_limit import ChannelRateLimit
from bot.sandbox.slack_records import BOT_USER_ID
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackRequests

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TRIAGE = "C0TRIAGE"
OPERATOR = "U0OPERATOR"
TS_PATTERN = re.compile(r"^\d{10}\.\d{6}$")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, value: str) -> dict[str, Any]:
    text = {"type": "plain_text", "text": "Go"}
    return {"type": "button", "text": text, "action_id": action_id, "value": value}


def modal(
    title: str = "Approve agent", blocks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "approve",
        "title": {"type": "plain_text", "text": title},
        "blocks": blocks if blocks is not None else [section("Sure?")],
    }


def ts_value(ts: str) -> tuple[int, int]:
    seconds, micros = ts.split(".")
    return int(seconds), int(micros)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(groups={"S0OPS": ["U0GROUPIE", OPERATOR]}) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


def slack_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return excinfo.value.response["error"]


# ---------------------------------------------------------------- messages


def test_message_round_trip(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=TRIAGE, text="card", blocks=[section("pending")])
    ts = posted["ts"]
    assert posted["channel"] == TRIAGE
    assert TS_PATTERN.match(ts)
    assert posted["message"]["user"] == BOT_USER_ID

    updated = client.chat_update(channel=TRIAGE, ts=ts, text="done", blocks=[section("approved")])
    assert (updated["ts"], updated["text"]) == (ts, "done")
    assert fake.message(TRIAGE, ts).blocks == [section("approved")]

    permalink = client.chat_getPermalink(channel=TRIAGE, message_ts=ts)["permalink"]
    assert permalink == f"https://fake-slack.test/archives/{TRIAGE}/p{ts.replace('.', '')}"

    client.reactions_add(channel=TRIAGE, timestamp=ts, name="white_check_mark")
    assert fake.message(TRIAGE, ts).reactions == ["white_check_mark"]
    with pytest.raises(SlackApiError) as again:
        client.reactions_add(channel=TRIAGE, timestamp=ts, name="white_check_mark")
    assert slack_error(again) == "already_reacted"

    ephemeral = client.chat_postEphemeral(channel=TRIAGE, user=OPERATOR, text="only you")
    assert TS_PATTERN.match(ephemeral["message_ts"])
    assert [e.text for e in fake.ephemerals(TRIAGE, user=OPERATOR)] == ["only you"]

    reply = client.chat_postMessage(channel=TRIAGE, text="audit note", thread_ts=ts)
    assert [m.ts for m in fake.thread(TRIAGE, ts)] == [reply["ts"]]
    assert ts_value(reply["ts"]) > ts_value(ts)
    assert [m.text for m in fake.messages(TRIAGE)] == ["done", "audit note"]


def test_ts_values_are_unique_and_increasing(client: WebClient) -> None:
    # Across channels: one channel takes about a message a second (see below).
    stamps = [client.chat_postMessage(channel=f"C0CH{i:03d}", text=str(i))["ts"] for i in range(20)]
    assert all(TS_PATTERN.match(ts) for ts in stamps)
    assert [ts_value(ts) for ts in stamps] == sorted({ts_value(ts) for ts in stamps})


def test_reply_to_an_unknown_thread_is_refused(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=TRIAGE, text="reply", thread_ts="1700000000.000100")
    assert slack_error(excinfo) == "thread_not_found"


def test_seeded_human_message_can_be_replied_to_but_not_edited(
    fake: FakeSlack, client: WebClient
) -> None:
    human = fake.seed_message(TRIAGE, "is the agent stuck?", user=OPERATOR)
    client.chat_postMessage(channel=TRIAGE, text="looking", thread_ts=human.ts)
    assert [m.text for m in fake.thread(TRIAGE, human.ts)] == ["looking"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=TRIAGE, ts=human.ts, text="edited")
    assert slack_error(excinfo) == "cant_update_message"


def test_update_of_an_unknown_message_fails(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=TRIAGE, ts="1700000000.000100", text="x")
    assert slack_error(excinfo) == "message_not_found"


def test_update_keeps_blocks_that_are_not_resent(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=TRIAGE, text="a", blocks=[section("card")])["ts"]
    client.chat_update(channel=TRIAGE, ts=ts, text="b")
    assert (fake.message(TRIAGE, ts).text, fake.message(TRIAGE, ts).blocks) == (
        "b",
        [section("card")],
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "", "text": "x"}, "channel_not_found"),
        ({"channel": TRIAGE}, "no_text"),
        ({"channel": TRIAGE, "text": "x" * 40_001}, "msg_too_long"),
    ],
)
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_argument_errors(
    client: WebClient, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(**kwargs)
    assert slack_error(excinfo) == error


# ---------------------------------------------------------------- Block Kit validation


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


REFUSED_BLOCKS = {
    "51 blocks": [{"type": "divider"}] * 51,
    "section text of 3001": [section("x" * 3001)],
    "header of 151": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
    "button value of 2001": [actions(button("approve", "v" * 2001))],
    "action_id of 256": [actions(button("a" * 256, "v"))],
    "block_id of 256": [{**section("x"), "block_id": "b" * 256}],
    "duplicate block_id": [{**section("x"), "block_id": "b"}, {**section("y"), "block_id": "b"}],
    "duplicate action_id": [actions(button("same", "1"), button("same", "2"))],
    "unknown block type": [{"type": "carousel_of_doom"}],
    "section without text": [{"type": "section"}],
    "section text as a bare string": [{"type": "section", "text": "hi"}],
    "mrkdwn button label": [
        actions({**button("a", "v"), "text": {"type": "mrkdwn", "text": "*Go*"}})
    ],
}


@pytest.mark.parametrize("blocks", REFUSED_BLOCKS.values(), ids=REFUSED_BLOCKS.keys())
def test_invalid_blocks_are_refused(
    fake: FakeSlack, client: WebClient, blocks: list[dict[str, Any]]
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=TRIAGE, text="card", blocks=blocks)
    assert slack_error(excinfo) == "invalid_blocks"
    reasons = excinfo.value.response["response_metadata"]["messages"]
    assert reasons and all(r.startswith("[ERROR] ") and "json-pointer:" in r for r in reasons)
    assert fake.messages() == []


def test_blocks_at_the_limits_are_accepted(client: WebClient) -> None:
    client.chat_postMessage(channel=TRIAGE, text="card", blocks=[{"type": "divider"}] * 50)
    client.chat_postMessage(channel=TRIAGE, text="card", blocks=[section("x" * 3000)])
    client.chat_postMessage(
        channel=TRIAGE, text="card", blocks=[actions(button("a" * 255, "v" * 2000))]
    )


def test_invalid_blocks_on_update_leave_the_message_alone(
    fake: FakeSlack, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=TRIAGE, text="a", blocks=[section("ok")])["ts"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=TRIAGE, ts=ts, text="b", blocks=[section("x" * 3001)])
    assert slack_error(excinfo) == "invalid_blocks"
    assert fake.message(TRIAGE, ts).blocks == [section("ok")]


def test_form_encoded_json_fields_are_decoded(fake: FakeSlack, client: WebClient) -> None:
    params = {"channel": TRIAGE, "text": "t", "blocks": json.dumps([section("form")])}
    ts = client.api_call("chat.postMessage", params=params)["ts"]
    assert fake.calls("chat.postMessage")[0].params["blocks"] == [section("form")]
    assert fake.message(TRIAGE, ts).blocks == [section("form")]

    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", params={**params, "blocks": "[{not json"})
    assert slack_error(excinfo) == "invalid_blocks_format"


# ---------------------------------------------------------------- auth and dispatch


def test_tokens_are_checked(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.api_url).auth_test()
    assert slack_error(missing) == "not_authed"
    with pytest.raises(SlackApiError) as user_token:
        WebClient(token="xoxp-user", base_url=fake.api_url).auth_test()
    assert slack_error(user_token) == "invalid_auth"

    anonymous = WebClient(base_url=fake.api_url)
    assert anonymous.api_call("auth.test", params={"token": "xoxb-form"})["ok"]
    assert fake.calls("auth.test")[-1].token == "xoxb-form"


def test_valid_tokens_can_be_restricted() -> None:
    with FakeSlack(valid_tokens={"xoxb-right"}) as fake:
        assert WebClient(token="xoxb-right", base_url=fake.api_url).auth_test()["ok"]
        with pytest.raises(SlackApiError) as excinfo:
            WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
        assert slack_error(excinfo) == "invalid_auth"


def test_auth_test_and_users_info(client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"], auth["user"]) == (
        "UBOTFAKE",
        "BBOTFAKE",
        "T0FAKE",
        "escbot",
    )
    assert auth["url"].startswith("https://")
    user = client.users_info(user=OPERATOR)["user"]
    assert (user["id"], user["is_bot"]) == (OPERATOR, False)
    assert user["name"] and user["real_name"]


def test_unknown_method(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.scheduleMessage", json={"channel": TRIAGE})
    assert slack_error(excinfo) == "unknown_method"
    assert fake.calls("chat.scheduleMessage")[0].error == "unknown_method"


def test_usergroups(fake: FakeSlack, client: WebClient) -> None:
    assert client.usergroups_users_list(usergroup="S0OPS")["users"] == ["U0GROUPIE", OPERATOR]
    with pytest.raises(SlackApiError) as excinfo:
        client.usergroups_users_list(usergroup="S0NOPE")
    assert slack_error(excinfo) == "no_such_subteam"
    fake.groups["S0NOPE"] = ["U0NEW"]
    assert client.usergroups_users_list(usergroup="S0NOPE")["users"] == ["U0NEW"]


# ---------------------------------------------------------------- views


def test_views_open_update_and_push(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id="1.2.a", view={**modal(), "external_id": "ext-1"})["view"]
    assert opened["id"].startswith("V") and opened["hash"]
    assert opened["callback_id"] == "approve"
    assert fake.view(opened["id"])["title"]["text"] == "Approve agent"

    by_id = client.views_update(view_id=opened["id"], view=modal("Approved"), hash=opened["hash"])
    assert by_id["view"]["id"] == opened["id"]
    by_external = client.views_update(external_id="ext-1", view=modal("Done"))
    assert by_external["view"]["id"] == opened["id"]
    assert fake.view(opened["id"])["title"]["text"] == "Done"

    with pytest.raises(SlackApiError) as stale_hash:
        client.views_update(view_id=opened["id"], view=modal(), hash=opened["hash"])
    assert slack_error(stale_hash) == "hash_conflict"
    with pytest.raises(SlackApiError) as unknown:
        client.views_update(view_id="V0UNKNOWN", view=modal())
    assert slack_error(unknown) == "not_found"

    pushed = client.views_push(trigger_id="1.2.b", view=modal("Step two"))["view"]
    assert pushed["id"] != opened["id"]
    assert len(fake.views()) == 2


@pytest.mark.parametrize(
    "view",
    [
        modal("x" * 25),
        modal(blocks=[section("x")] * 101),
        {**modal(), "submit": {"type": "plain_text", "text": "s" * 25}},
        {**modal(), "private_metadata": "m" * 3001},
        {**modal(), "callback_id": "c" * 256},
        modal(blocks=[section("x" * 3001)]),
        {k: v for k, v in modal().items() if k != "title"},
    ],
    ids=["title", "101 blocks", "submit", "metadata", "callback_id", "block", "no title"],
)
def test_invalid_views_are_refused(
    fake: FakeSlack, client: WebClient, view: dict[str, Any]
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id="1.2.c", view=view)
    assert slack_error(excinfo) == "invalid_arguments"
    assert excinfo.value.response["response_metadata"]["messages"]
    assert fake.views() == []


def test_trigger_ids_expire_and_are_single_use(fake: FakeSlack, client: WebClient) -> None:
    fake.expire_trigger("9.9.old")
    with pytest.raises(SlackApiError) as expired:
        client.views_open(trigger_id="9.9.old", view=modal())
    assert slack_error(expired) == "expired_trigger_id"

    client.views_open(trigger_id="9.9.new", view=modal())
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id="9.9.new", view=modal())
    assert slack_error(reused) == "exchanged_trigger_id"


# ---------------------------------------------------------------- failures


def test_rate_limit_is_retried_by_the_client(fake: FakeSlack) -> None:
    client = WebClient(
        token="xoxb-test",
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.fail_next("chat.postMessage", status=429, retry_after=1)
    assert client.chat_postMessage(channel=TRIAGE, text="after the limit")["ok"]
    attempts = fake.calls("chat.postMessage")
    assert [(c.failed, c.status, c.error) for c in attempts] == [
        (True, 429, "ratelimited"),
        (False, 200, None),
    ]
    assert [m.text for m in fake.messages(TRIAGE)] == ["after the limit"]


def test_rate_limit_answer_carries_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.update", retry_after=30)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=TRIAGE, ts="1700000000.000100", text="x")
    response = excinfo.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert response["error"] == "ratelimited"


def test_fail_next_with_a_server_error(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("auth.test", status=500, error="fatal_error", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.auth_test()
        assert (excinfo.value.response.status_code, slack_error(excinfo)) == (500, "fatal_error")
    assert client.auth_test()["ok"]
    assert [c.failed for c in fake.calls("auth.test")] == [True, True, False]


def test_slack_can_be_down(fake: FakeSlack, client: WebClient) -> None:
    fake.set_down(True)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=TRIAGE, text="lost")
    assert excinfo.value.response.status_code == 503
    assert slack_error(excinfo) == "service_unavailable"
    assert fake.calls("chat.postMessage")[0].failed
    assert fake.messages() == []

    fake.set_down(False)
    assert client.chat_postMessage(channel=TRIAGE, text="back")["ok"]


# ---------------------------------------------------------------- waiting and response URLs


def test_wait_for_sees_calls_from_other_threads(fake: FakeSlack, client: WebClient) -> None:
    worker = threading.Thread(
        target=lambda: [client.chat_postMessage(channel=TRIAGE, text=str(i)) for i in range(3)]
    )
    worker.start()
    calls = fake.wait_for("chat.postMessage", count=3)
    worker.join()
    assert [c.params["text"] for c in calls] == ["0", "1", "2"]
    matching = fake.wait_for("chat.postMessage", lambda c: c.params["text"] == "1")
    assert len(matching) == 1


def test_wait_for_reports_what_was_recorded(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"views\.open.*auth\.test"):
        fake.wait_for("views.open", timeout=0.05)


def test_response_urls_record_what_respond_sends(fake: FakeSlack) -> None:
    url = fake.response_url("cmd-1")
    assert url == f"{fake.url}/response/cmd-1"
    sent = WebhookClient(url).send_dict({"text": "Agent stopped", "response_type": "ephemeral"})
    assert sent.status_code == 200
    assert fake.responses("cmd-1") == [{"text": "Agent stopped", "response_type": "ephemeral"}]
    assert fake.wait_for_response(lambda body: body["text"] == "Agent stopped")["text"]
    assert fake.responses("other") == []


def test_response_url_bound_to_a_message_replaces_it(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=TRIAGE, text="pending", blocks=[section("pending")])["ts"]
    url = fake.response_url(channel=TRIAGE, message_ts=ts)
    WebhookClient(url).send_dict(
        {"replace_original": True, "text": "approved", "blocks": [section("approved")]}
    )
    assert fake.message(TRIAGE, ts).blocks == [section("approved")]


def test_response_url_refuses_invalid_blocks(fake: FakeSlack) -> None:
    url = fake.response_url("bad")
    sent = WebhookClient(url).send_dict({"blocks": [section("x" * 3001)]})
    assert sent.status_code == 400
    assert fake.responses("bad") == []
    assert not fake.response_posts("bad")[0].accepted


# ---------------------------------------------------------------- requests from Slack


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class _CaptureHandler(BaseHTTPRequestHandler):
    server: CaptureServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.captured.append(Captured(self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CaptureHandler)
        self.captured: list[Captured] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/slack/events"

    def last(self) -> Captured:
        return self.captured[-1]


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def slack(capture: CaptureServer) -> Iterator[SlackRequests]:
    with SlackRequests(capture.url, SECRET) as requests_from_slack:
        yield requests_from_slack


def verifies(request: Captured) -> bool:
    return SignatureVerifier(SECRET).is_valid(
        request.body,
        request.headers["x-slack-request-timestamp"],
        request.headers["x-slack-signature"],
    )


def test_signed_requests_verify_with_slack_sdk(
    capture: CaptureServer, slack: SlackRequests
) -> None:
    assert slack.slash_command("stop agent-7", user_id=OPERATOR).status_code == 200
    request = capture.last()
    assert request.path == "/slack/events"
    assert verifies(request)
    timestamp = int(request.headers["x-slack-request-timestamp"])
    assert abs(timestamp - time.time()) < 60
    assert request.headers["x-slack-signature"] == slack.sign(request.body, timestamp)


def test_forged_and_stale_requests_do_not_verify(
    capture: CaptureServer, slack: SlackRequests
) -> None:
    slack.slash_command("stop", user_id=OPERATOR, signature="v0=" + "0" * 64)
    assert not verifies(capture.last())

    slack.slash_command("stop", user_id=OPERATOR, timestamp=int(time.time()) - 600)
    stale = capture.last()
    assert stale.headers["x-slack-signature"] == slack.sign(stale.body, int(time.time()) - 600)
    assert not verifies(stale)

    with SlackRequests(capture.url, "another-secret") as other:
        other.slash_command("stop", user_id=OPERATOR)
    assert not verifies(capture.last())


def test_slash_command_body(capture: CaptureServer, slack: SlackRequests) -> None:
    slack.slash_command(
        "approve agent-7",
        user_id=OPERATOR,
        user_name="olga",
        response_url="http://127.0.0.1:1/response/r",
        trigger_id="11.22.ab",
        headers={"X-Extra": "yes"},
    )
    request = capture.last()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["x-extra"] == "yes"
    form = request.form()
    assert set(form) == {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    }
    assert form["text"] == "approve agent-7"
    assert (form["command"], form["channel_id"], form["team_id"]) == ("/agent", TRIAGE, "T0FAKE")
    assert (form["user_id"], form["user_name"]) == (OPERATOR, "olga")
    assert (form["response_url"], form["trigger_id"]) == (
        "http://127.0.0.1:1/response/r",
        "11.22.ab",
    )


def test_block_actions_body(capture: CaptureServer, slack: SlackRequests) -> None:
    slack.click(
        action_id="approve",
        value="esc-42",
        user_id=OPERATOR,
        channel_id=TRIAGE,
        message_ts="1700000000.000100",
        message_blocks=[section("card")],
    )
    request = capture.last()
    assert verifies(request)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = request.form()
    assert set(form) == {"payload"}
    payload = json.loads(form["payload"])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == OPERATOR
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": TRIAGE,
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == TRIAGE
    assert payload["message"]["ts"] == "1700000000.000100"
    assert payload["message"]["blocks"] == [section("card")]
    assert re.match(r"^\d+\.\d+\.[0-9a-f]+$", payload["trigger_id"])
    assert payload["response_url"].startswith("http://127.0.0.1:")
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["block_id"], action["type"]) == (
        "approve",
        "esc-42",
        "b",
        "button",
    )


def test_view_submission_body(capture: CaptureServer, slack: SlackRequests) -> None:
    values = {"reason": {"reason_input": {"type": "plain_text_input", "value": "looping"}}}
    slack.submit_view(
        callback_id="reject", user_id=OPERATOR, values=values, private_metadata="esc-42"
    )
    payload = json.loads(capture.last().form()["payload"])
    assert payload["type"] == "view_submission"
    assert payload["user"]["id"] == OPERATOR
    view = payload["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("reject", "esc-42")
    assert view["state"]["values"] == values
    assert view["id"].startswith("V")


def test_event_body_and_retry_headers(capture: CaptureServer, slack: SlackRequests) -> None:
    event = slack.message_event(text="help", user=OPERATOR, channel=TRIAGE)
    slack.event(event, event_id="Ev0001", retry_num=1, retry_reason="http_timeout")
    request = capture.last()
    assert verifies(request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-slack-retry-num"] == "1"
    assert request.headers["x-slack-retry-reason"] == "http_timeout"
    body = json.loads(request.body)
    assert (body["type"], body["event_id"], body["team_id"]) == (
        "event_callback",
        "Ev0001",
        "T0FAKE",
    )
    assert body["event"] == event
    assert body["authorizations"][0]["user_id"] == BOT_USER_ID
    assert body["is_ext_shared_channel"] is False
    assert isinstance(body["event_time"], int)

    slack.event(event)
    assert "x-slack-retry-num" not in capture.last().headers


def test_message_events() -> None:
    human = SlackRequests.message_event(text="hi", user=OPERATOR, channel=TRIAGE)
    assert (human["type"], human["user"], human["channel"]) == ("message", OPERATOR, TRIAGE)
    assert TS_PATTERN.match(human["ts"]) and human["event_ts"] == human["ts"]
    assert "bot_id" not in human and "subtype" not in human

    bot = SlackRequests.message_event(
        text="card", user=None, channel=TRIAGE, bot_id="B0OTHER", subtype="bot_message"
    )
    assert (bot["bot_id"], bot["subtype"]) == ("B0OTHER", "bot_message")
    assert "user" not in bot

    reply = SlackRequests.message_event(
        text="r", user=OPERATOR, channel=TRIAGE, thread_ts=human["ts"]
    )
    assert reply["thread_ts"] == human["ts"]


def test_url_verification(capture: CaptureServer, slack: SlackRequests) -> None:
    slack.url_verification("challenge-abc")
    request = capture.last()
    assert verifies(request)
    assert json.loads(request.body) == {
        "token": json.loads(request.body)["token"],
        "challenge": "challenge-abc",
        "type": "url_verification",
    }


def test_payloads_use_the_fake_response_urls(fake: FakeSlack, capture: CaptureServer) -> None:
    with SlackRequests(capture.url, SECRET, response_urls=fake.response_url) as slack:
        slack.slash_command("status", user_id=OPERATOR)
    url = capture.last().form()["response_url"]
    assert url.startswith(f"{fake.url}/response/")
    WebhookClient(url).send_dict({"text": "status: running"})
    assert fake.responses(url.rsplit("/", 1)[1]) == [{"text": "status: running"}]


def test_past_a_burst_a_channel_gets_429_with_retry_after(
    fake: FakeSlack, client: WebClient
) -> None:
    assert fake.rate_limit is not None
    for i in range(fake.rate_limit.burst):
        client.chat_postMessage(channel=TRIAGE, text=f"burst {i}")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=TRIAGE, text="one too many")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "1"
    client.chat_postMessage(channel="C0OTHER", text="another channel is not held back")
    client.chat_update(channel=TRIAGE, ts=fake.messages(TRIAGE)[0].ts, text="edits are not")
    [refused] = [c for c in fake.calls("chat.postMessage") if c.failed]
    assert refused.status == 429


def test_the_limit_refills_at_a_message_a_second() -> None:
    now = [0.0]
    limit = ChannelRateLimit(rate=1.0, burst=2, clock=lambda: now[0])
    assert limit.retry_after("chat.postMessage", TRIAGE) is None
    assert limit.retry_after("chat.postMessage", TRIAGE) is None
    assert limit.retry_after("chat.postMessage", TRIAGE) == 1
    now[0] += 1.0
    assert limit.retry_after("chat.postMessage", TRIAGE) is None
    assert limit.retry_after("chat.update", TRIAGE) is None
    assert limit.refused == 1


def test_a_test_can_opt_out_of_the_rate_limit() -> None:
    with FakeSlack(rate_limit=None) as unlimited:
        plain = WebClient(token="xoxb-test", base_url=unlimited.api_url)
        for i in range(15):
            plain.chat_postMessage(channel=TRIAGE, text=str(i))
        assert not any(c.failed for c in unlimited.calls())
