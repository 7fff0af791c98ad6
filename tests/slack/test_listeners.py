"""The listeners called directly, as plain functions: the real service (SQLite, Redis) and
a real WebClient against the fake Slack, without Bolt or HTTP in between."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from blocks.actions import ButtonValue, Callback, Field_, ModalMetadata
from bot.contracts import Verdict
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.db import audit
from bot.db.store import Store
from bot.errors import NotAllowed
from bot.policy import Policy
from handlers import actions, commands, events, submissions
from handlers.deps import Deps
from tests.conftest import OPERATOR, STRANGER
from tests.support.factories import escalation
from tests.support.fake_slack import FakeSlack

URL = {"response_url": "https://example.invalid/r"}


class Recorder:
    """Stands in for Bolt's ack() and respond(): keeps what it was called with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)

    @property
    def texts(self) -> list[str]:
        return [call.get("text") or "" for call in self.calls]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


@pytest.fixture
def deps(service: EscalationService, store: Store, policy: Policy) -> Deps:
    return Deps(service, ChatDelivery(store, "test"))


def button(escalation_id: str) -> dict[str, Any]:
    return {"value": ButtonValue(escalation_id=escalation_id).dump()}


def click_body(user: str, **extra: Any) -> dict[str, Any]:
    return {"user": {"id": user}, **URL, **extra}


def test_the_ack_of_a_command_answers_help_and_mistakes_itself(
    deps: Deps, client: WebClient
) -> None:
    ack, respond = Recorder(), Recorder()
    handed: list[object] = []
    holding = replace(deps, work=lambda *args, **kwargs: handed.append(args), answer_within=0)
    for text in ("explode x", "", "kill refund-1"):
        commands.acknowledge_command(ack, {"text": text}, respond, client, deps=holding)
    assert "unknown command `explode`" in ack.texts[0]
    assert "/agent kill <task_id>" in ack.texts[1]
    assert ack.calls[2] == {}  # work not done in time: acked empty, the work answers after
    assert len(handed) == 1 and handed[0][0] is commands.run_command


def test_a_commands_answer_ready_in_time_is_its_ack(
    deps: Deps, client: WebClient, rdb: redis.Redis, prefix: str
) -> None:
    ack, respond = Recorder(), Recorder()
    command = {"text": "kill refund-79 loop", "user_id": OPERATOR, **URL}
    commands.acknowledge_command(ack, command, respond, client, deps=deps)
    [answer] = ack.calls
    assert answer["response_type"] == "ephemeral" and "Killed refund-79" in answer["text"]
    assert respond.calls == []  # nothing more to send Slack
    assert rdb.exists(f"{prefix}kill:refund-79")
    refused = {"text": "kill refund-80", "user_id": STRANGER, **URL}
    commands.acknowledge_command(ack, refused, respond, client, deps=deps)
    assert "not allowed" in ack.texts[-1] and respond.calls == []


def test_an_answer_ready_after_the_ack_goes_to_the_response_url(
    deps: Deps, client: WebClient, rdb: redis.Redis, prefix: str
) -> None:
    ack, respond = Recorder(), Recorder()
    released, ran = threading.Event(), []

    def later(fn: Any, *args: Any, **kwargs: Any) -> None:
        def run() -> None:
            released.wait(10)
            fn(*args, **kwargs)

        thread = threading.Thread(target=run)
        thread.start()
        ran.append(thread)

    slow = replace(deps, work=later, answer_within=0.01)
    command = {"text": "kill refund-81 slow", "user_id": OPERATOR, **URL}
    commands.acknowledge_command(ack, command, respond, client, deps=slow)
    assert ack.calls == [{}]  # acked empty at the deadline
    released.set()
    ran[0].join(10)
    [reply] = respond.calls
    assert reply["response_type"] == "ephemeral" and "Killed refund-81" in reply["text"]
    assert ack.calls == [{}] and rdb.exists(f"{prefix}kill:refund-81")


def test_a_command_is_one_service_call_and_an_ephemeral_reply(
    deps: Deps, client: WebClient, rdb: redis.Redis, prefix: str
) -> None:
    respond = Recorder()
    commands.run_command(
        {"text": "kill refund-77 loop", "user_id": OPERATOR, **URL}, respond, client, deps=deps
    )
    [reply] = respond.calls
    assert reply["response_type"] == "ephemeral" and "Killed refund-77" in reply["text"]
    assert json.loads(rdb.get(f"{prefix}kill:refund-77") or "{}")["reason"] == "loop"
    commands.run_command({"text": "list", "user_id": STRANGER, **URL}, respond, client, deps=deps)
    assert "kill:refund-77" in json.dumps(respond.calls[-1]["blocks"])


def test_a_refusal_is_the_persons_answer_not_an_exception(
    deps: Deps, client: WebClient, rdb: redis.Redis, prefix: str
) -> None:
    respond = Recorder()
    commands.run_command(
        {"text": "kill refund-78", "user_id": STRANGER, **URL}, respond, client, deps=deps
    )
    assert "not allowed" in respond.texts[0] and "Nothing was changed" in respond.texts[0]
    assert not rdb.exists(f"{prefix}kill:refund-78")


def test_buttons_decide_and_acknowledge(deps: Deps, client: WebClient) -> None:
    record, _ = deps.service.open_escalation(escalation())
    respond = Recorder()
    actions.acknowledge(click_body(OPERATOR), button(record.id), client, respond, deps=deps)
    assert deps.service.get_escalation(record.id).state == "acknowledged"
    actions.decide(
        click_body(OPERATOR), button(record.id), client, respond, deps=deps, verdict="approve"
    )
    assert deps.service.get_escalation(record.id).state == "approved"
    actions.decide(
        click_body(OPERATOR), button(record.id), client, respond, deps=deps, verdict="terminate"
    )
    assert "Already *approved*" in respond.texts[-1]


def test_a_decision_modal_opens_only_while_open(
    deps: Deps, client: WebClient, fake: FakeSlack
) -> None:
    record, _ = deps.service.open_escalation(escalation())
    respond = Recorder()
    body = click_body(OPERATOR, trigger_id="1.2.abc", channel={"id": "C0TRIAGE"})
    actions.open_decision_modal(
        body,
        button(record.id),
        client,
        respond,
        deps=deps,
        verdict="reject",
        build=actions.reject_modal,
    )
    [modal] = fake.views()
    assert modal["callback_id"] == Callback.REJECT.value
    deps.service.decide(record.id, OPERATOR, "approve")
    actions.open_decision_modal(
        body,
        button(record.id),
        client,
        respond,
        deps=deps,
        verdict="reject",
        build=actions.reject_modal,
    )
    assert len(fake.views()) == 1 and "Already *approved*" in respond.texts[-1]


@pytest.mark.parametrize("verdict", ["reject", "redirect"])
def test_a_decision_modal_is_refused_at_the_click_to_someone_without_the_role(
    deps: Deps, client: WebClient, fake: FakeSlack, store: Store, verdict: Verdict
) -> None:
    record, _ = deps.service.open_escalation(escalation())
    respond = Recorder()
    body = click_body(STRANGER, trigger_id="1.2.abc", channel={"id": "C0TRIAGE"})
    build = actions.reject_modal if verdict == "reject" else actions.redirect_modal
    actions.open_decision_modal(
        body, button(record.id), client, respond, deps=deps, verdict=verdict, build=build
    )
    assert fake.views() == []  # no modal to fill in only to be refused on submit
    [reply] = respond.calls
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (
        f"🚫 not allowed: {verdict} needs the operator role. Nothing was changed."
    )
    with store.reading() as session:
        [denied] = [r for r in audit.iter_records(session) if r.action == "denied"]
    assert (denied.actor, denied.escalation_id, denied.task_id) == (
        STRANGER,
        record.id,
        record.task_id,
    )
    assert denied.detail == {"attempted": verdict}
    assert deps.service.get_escalation(record.id).state == "open"


def test_check_may_changes_nothing_for_someone_with_the_role(deps: Deps, store: Store) -> None:
    record, _ = deps.service.open_escalation(escalation())
    deps.service.check_may(OPERATOR, "operator", "reject", escalation_id=record.id)
    with store.reading() as session:
        assert [r.action for r in audit.iter_records(session)] == []
    with pytest.raises(NotAllowed, match="not allowed: kill all needs the admin role"):
        deps.service.check_may(OPERATOR, "admin", "kill all")


def test_a_button_without_an_escalation_is_refused(deps: Deps, client: WebClient) -> None:
    respond = Recorder()
    actions.acknowledge(click_body(OPERATOR), {"value": "nope"}, client, respond, deps=deps)
    assert "does not belong to an escalation card" in respond.texts[0]


def test_a_submission_needs_text_then_decides(deps: Deps, client: WebClient) -> None:
    record, _ = deps.service.open_escalation(escalation())
    meta = ModalMetadata(escalation_id=record.id, channel="C0TRIAGE").dump()

    def view(text: str) -> dict[str, Any]:
        values = {Field_.COMMENT.value: {Field_.VALUE.value: {"value": text}}}
        return {"private_metadata": meta, "state": {"values": values}}

    ack = Recorder()
    submissions.check_submission(ack, view("  "), field=Field_.COMMENT)
    assert ack.calls[0]["response_action"] == "errors"
    submissions.decide(
        {"user": {"id": OPERATOR}},
        view("too large"),
        client,
        deps=deps,
        verdict="reject",
        field=Field_.COMMENT,
    )
    decided = deps.service.get_escalation(record.id)
    assert decided.state == "rejected" and decided.comment == "too large"


def test_a_thread_reply_reaches_the_inbox_once_and_is_marked(
    deps: Deps, client: WebClient, fake: FakeSlack, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    record, _ = deps.service.open_escalation(escalation())
    [pending] = deps.delivery.claim_cards()
    parent = fake.seed_message("C0TRIAGE", "card", user="UBOT", bot_id="B1")
    deps.delivery.card_posted(pending, parent.ts)
    reply = fake.seed_message("C0TRIAGE", "use 500", user=OPERATOR, thread_ts=parent.ts)
    event = {
        "type": "message",
        "channel": "C0TRIAGE",
        "user": OPERATOR,
        "text": "use 500",
        "ts": reply.ts,
        "thread_ts": parent.ts,
    }
    for _ in range(2):  # Slack retries: delivered once, marked each time
        events.relay_reply(event, {"event": event}, client, deps=deps)
    entries = rdb.xrange(f"{prefix}inbox:{record.task_id}")
    assert [fields["text"] for _, fields in entries] == ["use 500"]
    assert fake.calls("reactions.add")
