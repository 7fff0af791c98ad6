"""Cards owed to Slack: a dead worker's cards go to another within seconds (a short
lease, renewed while posting), and a card is drawn from its escalation's state when it is
posted, never as open for one that ended before."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from blocks.actions import Action
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.core.delivery import CARD_LEASE, ChatDelivery
from bot.db.models import OutboxRow
from bot.db.store import Store
from bot.policy import Policy
from bot.slack.client import make_web_client
from bot.slack.worker import SlackWorker
from tests.conftest import OPERATOR
from tests.support.clock import ManualClock
from tests.support.factories import escalation
from tests.support.fake_slack import FakeSlack, Message
from tests.support.waiting import wait_until

BUTTONS = {action.value for action in (Action.APPROVE, Action.REJECT, Action.REDIRECT)}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return make_web_client("xoxb-test", fake.api_url)


@pytest.fixture
def timed(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: ManualClock
) -> EscalationService:
    return make_service(control, clock=clock)


def worker(
    client: WebClient, store: Store, policy: Policy, clock: ManualClock, owner: str
) -> SlackWorker:
    return SlackWorker(client, ChatDelivery(store, owner, clock=clock), policy, clock=clock)


def action_ids(message: Message) -> set[str]:
    return {
        element.get("action_id")
        for block in message.blocks
        for element in block.get("elements", [])
        if isinstance(element, dict)
    }


def test_the_card_lease_is_seconds() -> None:
    assert CARD_LEASE.total_seconds() <= 5


def test_a_dead_workers_cards_are_posted_by_another_once_its_short_lease_runs_out(
    timed: EscalationService,
    store: Store,
    policy: Policy,
    client: WebClient,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    opened = [timed.open_escalation(escalation())[0] for _ in range(3)]
    dead = ChatDelivery(store, "dead-worker", clock=clock)
    assert len(dead.claim_cards()) == 3  # then it dies without posting
    alive = worker(client, store, policy, clock, "alive-worker")

    clock.advance(seconds=1)
    assert alive.post_cards() == 0  # still leased to the dead one
    clock.advance(seconds=CARD_LEASE.total_seconds())
    assert alive.post_cards() == 3

    for record in opened:
        assert any(record.id in json.dumps(m.blocks) for m in fake.messages("C0TRIAGE"))
    assert alive.delivery.pending_card_count() == 0


def test_a_lease_renewed_while_posting_keeps_the_cards_from_another_worker(
    timed: EscalationService, store: Store, clock: ManualClock
) -> None:
    timed.open_escalation(escalation())
    busy = ChatDelivery(store, "busy-worker", clock=clock)
    other = ChatDelivery(store, "other-worker", clock=clock)
    held = busy.claim_cards()
    clock.advance(seconds=4)
    busy.renew_cards(held)  # still working on them: the lease runs from now
    clock.advance(seconds=4)  # past the first lease, inside the renewed one
    assert other.claim_cards() == []
    clock.advance(seconds=2)
    assert [p.card_id for p in other.claim_cards()] == [p.card_id for p in held]


def test_holding_renews_the_lease_by_itself(
    timed: EscalationService, store: Store, clock: ManualClock
) -> None:
    timed.open_escalation(escalation())
    busy = ChatDelivery(store, "busy-worker", clock=clock)
    other = ChatDelivery(store, "other-worker", clock=clock)
    held = busy.claim_cards()
    with busy.holding(held, every=0.01):
        clock.advance(seconds=CARD_LEASE.total_seconds() * 3)  # a very slow post
        wait_until(lambda: busy_until(store) > clock(), what="the heartbeat's renewal")
        assert other.claim_cards() == []


def busy_until(store: Store) -> datetime:
    with store.reading() as session:
        until = session.scalar(select(OutboxRow.claimed_until).where(OutboxRow.topic == "card"))
    assert until is not None
    return until


def test_a_card_for_an_escalation_decided_before_it_was_posted_says_so(
    timed: EscalationService,
    store: Store,
    policy: Policy,
    client: WebClient,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    """Decided while the card waited (Slack down, a dead worker): its channel still gets
    the card, as a record of what happened and a thread for the agent's words, but
    drawn as decided: no buttons, who decided what."""
    record, _ = timed.open_escalation(escalation())
    timed.decide(record.id, OPERATOR, "reject", comment="not this one")
    assert worker(client, store, policy, clock, "w").post_cards() == 1
    [card] = fake.messages("C0TRIAGE")
    assert not action_ids(card) & BUTTONS
    assert "Rejected" in json.dumps(card.blocks) and "not this one" in json.dumps(card.blocks)
    assert timed.thread_for(record.task_id, record.id)[1] is not None  # type: ignore[index]


def test_cards_of_an_escalation_that_climbed_and_expired_unseen_say_how_it_ended(
    timed: EscalationService,
    store: Store,
    policy: Policy,
    client: WebClient,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    """It climbed through every tier and expired while its cards waited: each tier's
    channel gets its card as it would have had Slack been up, drawn as it is now:
    expired, no buttons, and where it had been escalated to."""
    record, _ = timed.open_escalation(escalation())
    for minutes in (5, 15, 30):  # triage, review, incident: each tier's time runs out
        clock.advance(minutes=minutes, seconds=1)
        timed.sweep_tiers()
    assert timed.get_escalation(record.id).state == "expired"
    delivery = worker(client, store, policy, clock, "w")
    assert delivery.post_cards() == 3
    for channel in ("C0TRIAGE", "C0REVIEW", "C0INCIDENT"):
        [card] = fake.messages(channel)
        text = json.dumps(card.blocks)
        assert not action_ids(card) & BUTTONS and "Expired" in text
        assert ("It had been escalated to *incident*" in text) == (channel != "C0INCIDENT")
    assert delivery.delivery.pending_card_count() == 0


def test_a_card_of_a_tier_left_while_open_offers_to_decide_here_or_there(
    timed: EscalationService,
    store: Store,
    policy: Policy,
    client: WebClient,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    record, _ = timed.open_escalation(escalation())
    clock.advance(minutes=5, seconds=1)
    timed.sweep_tiers()  # climbed to review before its triage card was posted
    assert worker(client, store, policy, clock, "w").post_cards() == 2
    [late] = fake.messages("C0TRIAGE")
    assert action_ids(late) >= BUTTONS  # it is open: it may still be decided here
    assert "Escalated to *review*: decide here or there" in json.dumps(late.blocks)
    assert timed.get_escalation(record.id).state == "open"


def test_a_decision_landing_between_the_claim_and_the_post_is_drawn(
    timed: EscalationService,
    store: Store,
    policy: Policy,
    client: WebClient,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    record, _ = timed.open_escalation(escalation())
    delivery = ChatDelivery(store, "w", clock=clock)
    [claimed] = delivery.claim_cards()
    timed.decide(record.id, OPERATOR, "approve")
    current = delivery.current(claimed)
    assert current is not None and current.escalation.state == "approved"


def test_a_decision_landing_while_the_card_is_posted_is_redrawn_at_once(
    timed: EscalationService,
    store: Store,
    policy: Policy,
    client: WebClient,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    """No audit follower can redraw a card whose ts is not yet recorded: the worker
    itself draws it again once it is."""
    record, _ = timed.open_escalation(escalation())
    fake.before_answering("chat.postMessage", lambda: timed.decide(record.id, OPERATOR, "approve"))
    assert worker(client, store, policy, clock, "w").post_cards() == 1
    [card] = fake.messages("C0TRIAGE")
    assert card.edited and not action_ids(card) & BUTTONS
    assert "Approved" in json.dumps(card.blocks)
