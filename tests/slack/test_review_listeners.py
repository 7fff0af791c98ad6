"""The review card's listeners called directly: the real service (both databases, Redis)
and a real WebClient against the fake Slack, without Bolt or HTTP in between."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from blocks.actions import Callback, Field_, ReviewButtonValue, ReviewModalMetadata
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.db import audit
from bot.db.store import Store
from bot.policy import parse_policy
from bot.records import ReviewItem
from handlers import reviews
from handlers.deps import Deps
from tests.conftest import ADMIN, OPERATOR, STRANGER, StaticDirectory
from tests.slack.test_listeners import Recorder, click_body
from tests.support.fake_slack import FakeSlack
from tests.test_review_verdicts import REVIEWED_POLICY


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


@pytest.fixture
def deps(store: Store, control: ControlPlane, directory: StaticDirectory) -> Deps:
    policy = parse_policy(REVIEWED_POLICY.encode())
    service = EscalationService(store, control, policy, directory=directory)
    return Deps(service, ChatDelivery(store, "test"))


@pytest.fixture
def review(deps: Deps) -> ReviewItem:
    task_id = f"refund-{uuid.uuid4().hex[:6]}"
    deps.service.task_finished(task_id, "billing-agent", task_type="refund", notice="Done.")
    return next(r for r in deps.service.overview().reviews if r.subject_id == task_id)


REFUSED = "review needs the operator role"


def button(review_id: int) -> dict[str, Any]:
    return {"value": ReviewButtonValue(review_id=review_id).dump()}


def flag_view(review_id: int, text: str, pause: str = "none") -> dict[str, Any]:
    values = {
        Field_.WRONG.value: {Field_.VALUE.value: {"type": "plain_text_input", "value": text}},
        Field_.PAUSE.value: {
            Field_.VALUE.value: {"type": "radio_buttons", "selected_option": {"value": pause}}
        },
    }
    meta = ReviewModalMetadata(review_id=review_id, channel="C0TRIAGE").dump()
    return {"private_metadata": meta, "state": {"values": values}}


def actions_of(store: Store, action: str) -> list[audit.AuditRecord]:
    with store.reading() as session:
        return [r for r in audit.iter_records(session) if r.action == action]


def test_looks_right_gives_the_verdict_and_a_second_click_says_who_was_first(
    deps: Deps, client: WebClient, review: ReviewItem
) -> None:
    respond = Recorder()
    reviews.looks_right(click_body(OPERATOR), button(review.id), client, respond, deps=deps)
    assert respond.calls == []  # the card's redraw is the answer
    assert deps.service.get_review(review.id).verdict == "looks_right"
    reviews.looks_right(click_body(ADMIN), button(review.id), client, respond, deps=deps)
    [reply] = respond.calls
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith(
        f":information_source: Already reviewed (*looks right*) by <@{OPERATOR}>"
    )
    assert reply["text"].endswith("Your verdict changed nothing.")


def test_flag_opens_its_modal_only_for_an_operator_and_only_before_a_verdict(
    deps: Deps, client: WebClient, fake: FakeSlack, store: Store, review: ReviewItem
) -> None:
    body = click_body(OPERATOR, trigger_id="1.2.abc", channel={"id": "C0TRIAGE"})
    respond = Recorder()
    reviews.open_flag_modal(body, button(review.id), client, respond, deps=deps)
    [modal] = fake.views()
    assert modal["callback_id"] == Callback.REVIEW_FLAG.value
    assert json.loads(modal["private_metadata"]) == {"v": 1, "r": review.id, "c": "C0TRIAGE"}

    stranger = click_body(STRANGER, trigger_id="1.2.def", channel={"id": "C0TRIAGE"})
    reviews.open_flag_modal(stranger, button(review.id), client, respond, deps=deps)
    assert len(fake.views()) == 1  # no modal to fill in only to be refused on submit
    assert respond.texts[-1] == f"🚫 not allowed: {REFUSED}. Nothing was changed."
    [denied] = actions_of(store, "denied")
    assert (denied.actor, denied.task_id) == (STRANGER, review.task_id)

    deps.service.review(review.id, ADMIN, "looks_right")
    reviews.open_flag_modal(body, button(review.id), client, respond, deps=deps)
    assert len(fake.views()) == 1 and "Already reviewed" in respond.texts[-1]


def test_a_flag_needs_what_is_wrong_then_flags_and_pauses(
    deps: Deps, client: WebClient, review: ReviewItem, rdb: redis.Redis, prefix: str
) -> None:
    ack = Recorder()
    reviews.check_flag(ack, flag_view(review.id, "   "))
    assert ack.calls == [
        {"response_action": "errors", "errors": {Field_.WRONG.value: reviews.WRONG_REQUIRED}}
    ]
    reviews.flag(click_body(OPERATOR), flag_view(review.id, "  "), client, deps=deps)
    assert deps.service.get_review(review.id).verdict is None  # refused in the ack: nothing

    reviews.check_flag(ack, flag_view(review.id, "made up a delivery date", "agent"))
    assert ack.calls[-1] == {}
    reviews.flag(
        {"user": {"id": OPERATOR}},
        flag_view(review.id, "made up a delivery date", "agent"),
        client,
        deps=deps,
    )
    given = deps.service.get_review(review.id)
    assert (given.verdict, given.verdict_note) == ("flagged", "made up a delivery date")
    assert given.paused == "agent:billing-agent"
    assert json.loads(rdb.get(f"{prefix}pause:agent:billing-agent") or "{}")["by"] == OPERATOR


def test_a_flag_without_a_pause_pauses_nothing(
    deps: Deps, client: WebClient, review: ReviewItem, rdb: redis.Redis, prefix: str
) -> None:
    reviews.flag({"user": {"id": OPERATOR}}, flag_view(review.id, "meh"), client, deps=deps)
    assert deps.service.get_review(review.id).verdict == "flagged"
    assert not rdb.exists(f"{prefix}pause:{review.task_id}", f"{prefix}pause:agent:billing-agent")


def test_a_strangers_flag_submission_is_refused_privately_and_changes_nothing(
    deps: Deps,
    client: WebClient,
    fake: FakeSlack,
    store: Store,
    review: ReviewItem,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    view = flag_view(review.id, "bad", "task")
    reviews.flag({"user": {"id": STRANGER}, "view": view}, view, client, deps=deps)
    [told] = fake.ephemerals("C0TRIAGE", STRANGER)
    assert f"not allowed: {REFUSED}" in told.text
    assert deps.service.get_review(review.id).verdict is None
    assert not rdb.exists(f"{prefix}pause:{review.task_id}")
    assert [r.actor for r in actions_of(store, "denied")] == [STRANGER]


def test_a_button_without_a_review_is_refused(deps: Deps, client: WebClient) -> None:
    respond = Recorder()
    for value in ({"value": "nope"}, {"value": '{"v": 1, "r": 0}'}, {}):
        reviews.looks_right(click_body(OPERATOR), value, client, respond, deps=deps)
    assert all("does not belong to a review card" in text for text in respond.texts)
    assert len(respond.texts) == 3
