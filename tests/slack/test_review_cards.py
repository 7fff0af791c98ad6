"""Review cards owed to Slack, driven by the Slack worker against the fake Slack: posted
where they belong, later if Slack is down, drawn with a verdict given before or while
they were posted, redrawn from the audit log after one, and never ahead of an escalation
card."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from blocks.actions import Action
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.db.store import Store
from bot.policy import parse_policy
from bot.records import ReviewItem
from bot.slack.client import make_web_client
from bot.slack.worker import SlackWorker
from tests.conftest import OPERATOR, StaticDirectory
from tests.support.clock import ManualClock
from tests.support.factories import escalation
from tests.support.fake_slack import FakeSlack, Message
from tests.test_review_verdicts import REVIEWED_POLICY

# An exception (a person decides) on the default ladder: its card goes to C0TRIAGE.
PERSON_DATA = {"kind": "exception", "task_type": "support"}
REVIEW_BUTTONS = {Action.REVIEW_LOOKS_RIGHT.value, Action.REVIEW_FLAG.value}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ruled(
    store: Store, control: ControlPlane, directory: StaticDirectory, clock: ManualClock
) -> EscalationService:
    policy = parse_policy(REVIEWED_POLICY.encode())
    return EscalationService(store, control, policy, directory=directory, clock=clock)


@pytest.fixture
def worker(
    fake: FakeSlack, store: Store, ruled: EscalationService, clock: ManualClock
) -> SlackWorker:
    client: WebClient = make_web_client("xoxb-test", fake.api_url)
    return SlackWorker(client, ChatDelivery(store, "w", clock=clock), ruled.policies, clock=clock)


def finished(service: EscalationService) -> ReviewItem:
    task_id = f"refund-{uuid.uuid4().hex[:6]}"
    assert service.task_finished(task_id, "billing-agent", task_type="refund", notice="Done.")
    return next(r for r in service.overview().reviews if r.subject_id == task_id)


def auto_refund(service: EscalationService) -> ReviewItem:
    action = {"name": "issue_refund", "args": {"amount": 20}}
    record, _ = service.open_escalation(escalation(action=action))
    return next(r for r in service.overview().reviews if r.subject_id == record.id)


def review_cards(fake: FakeSlack, channel: str | None = None) -> list[Message]:
    return [m for m in fake.messages(channel) if "Review `" in json.dumps(m.blocks)]


def buttons(message: Message) -> set[str]:
    return {
        element.get("action_id")
        for block in message.blocks
        for element in block.get("elements", [])
        if isinstance(element, dict) and element.get("action_id")
    }


def test_review_cards_are_posted_where_they_belong_once(
    worker: SlackWorker, ruled: EscalationService, fake: FakeSlack
) -> None:
    decision, task = auto_refund(ruled), finished(ruled)
    worker.tick()
    [refund_card] = review_cards(fake, "C0PAYTRI")  # the refund ladder's first tier
    [task_card] = review_cards(fake, "C0TRIAGE")  # the first tier
    assert f"Review `{decision.id}`" in json.dumps(refund_card.blocks)
    assert f"Review `{task.id}`" in json.dumps(task_card.blocks)
    assert buttons(refund_card) == buttons(task_card) == REVIEW_BUTTONS
    stored = ruled.get_review(task.id)
    assert (stored.channel, stored.ts) == ("C0TRIAGE", task_card.ts)
    assert worker.review_cards.reviews.owed_count() == 0
    worker.tick()
    assert len(review_cards(fake)) == 2


def test_slack_down_while_a_review_card_is_owed_it_is_posted_later(
    worker: SlackWorker, ruled: EscalationService, fake: FakeSlack, clock: ManualClock
) -> None:
    review = finished(ruled)
    fake.set_down(True)
    assert worker.post_reviews() == 0
    assert worker.review_cards.reviews.owed_count() == 1
    assert worker.post_reviews() == 0  # backing off: not tried again yet
    fake.set_down(False)
    clock.advance(seconds=3)  # past the first backoff (1 to 2 s)
    assert worker.post_reviews() == 1
    [card] = review_cards(fake, "C0TRIAGE")
    assert f"Review `{review.id}`" in json.dumps(card.blocks)
    assert worker.review_cards.reviews.owed_count() == 0


def test_a_verdict_redraws_the_card_from_the_audit_log(
    worker: SlackWorker, ruled: EscalationService, fake: FakeSlack
) -> None:
    review = finished(ruled)
    worker.tick()
    ruled.review(review.id, OPERATOR, "flagged", note="promised too much", pause="agent")
    worker.follow_audit()
    [card] = review_cards(fake, "C0TRIAGE")
    text = json.dumps(card.blocks)
    assert card.edited and not buttons(card) & REVIEW_BUTTONS
    assert "*Flagged* by" in text and "promised too much" in text and "agent:billing-agent" in text
    assert f"<@{OPERATOR}>" in text


def test_a_verdict_given_before_the_card_is_posted_is_drawn_into_it(
    worker: SlackWorker, ruled: EscalationService, fake: FakeSlack
) -> None:
    review = finished(ruled)
    ruled.review(review.id, "cli:alice", "looks_right")  # Slack was down: the CLI
    assert worker.post_reviews() == 1
    [card] = review_cards(fake, "C0TRIAGE")
    assert not buttons(card) & REVIEW_BUTTONS and "*Looks right* by" in json.dumps(card.blocks)


def test_a_verdict_landing_while_the_card_is_posted_is_redrawn_at_once(
    worker: SlackWorker, ruled: EscalationService, fake: FakeSlack
) -> None:
    review = finished(ruled)
    fake.before_answering(
        "chat.postMessage", lambda: ruled.review(review.id, OPERATOR, "looks_right")
    )
    assert worker.post_reviews() == 1
    [card] = review_cards(fake, "C0TRIAGE")
    assert card.edited and not buttons(card) & REVIEW_BUTTONS
    assert "*Looks right* by" in json.dumps(card.blocks)


def test_an_escalation_card_never_waits_behind_review_cards(
    worker: SlackWorker, ruled: EscalationService, fake: FakeSlack
) -> None:
    for _ in range(3):
        finished(ruled)
    opened, _ = ruled.open_escalation(escalation(**PERSON_DATA))
    worker.tick()
    posted = fake.messages("C0TRIAGE")
    assert opened.id in json.dumps(posted[0].blocks)  # before every review card
    assert len(review_cards(fake, "C0TRIAGE")) == 3

    later = [finished(ruled) for _ in range(3)]
    urgent: list[str] = []
    # An escalation arrives while the first of these review cards is being posted.
    fake.before_answering(
        "chat.postMessage",
        lambda: urgent.append(ruled.open_escalation(escalation(**PERSON_DATA))[0].id),
    )
    assert worker.post_reviews() == 3
    newest = fake.messages("C0TRIAGE")[len(posted) :]
    assert f"Review `{later[0].id}`" in json.dumps(newest[0].blocks)
    assert urgent[0] in json.dumps(newest[1].blocks)  # ahead of the other two reviews
    assert all(
        f"Review `{review.id}`" in json.dumps(message.blocks)
        for review, message in zip(later[1:], newest[2:], strict=True)
    )
