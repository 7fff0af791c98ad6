"""Delivery under load (CONTRACTS §13), in process: the real service, store and Redis, the
Slack worker against the rate-limited fake Slack, and the listeners called directly.
Cards go out most severe first, then oldest; a flood of low and medium ones as a digest
whose buttons open each card in a modal, where decisions still work; the digest drawn
again after them; deadlines from posting; a card Slack never takes still climbs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from blocks.actions import Action, ButtonValue
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.db.store import Store
from bot.policy import Policy, parse_policy
from bot.slack.client import make_web_client
from bot.slack.pacing import ChannelPacer
from bot.slack.worker import SlackWorker
from handlers import actions
from handlers.deps import Deps
from tests.conftest import OPERATOR, POLICY_YAML, StaticDirectory
from tests.support.clock import ManualClock
from tests.support.factories import escalation
from tests.support.fake_slack import FakeSlack
from tests.support.storm import buttons_in

TRIAGE = "C0TRIAGE"


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


@pytest.fixture
def worker(client: WebClient, store: Store, policy: Policy, clock: ManualClock) -> SlackWorker:
    return SlackWorker(client, ChatDelivery(store, "worker", clock=clock), policy, clock=clock)


def test_cards_are_claimed_most_severe_first_then_oldest(
    timed: EscalationService, store: Store, clock: ManualClock
) -> None:
    opened = []
    for severity in ("low", "medium", "critical", "high", "low", "critical"):
        opened.append((severity, timed.open_escalation(escalation(severity=severity))[0].id))
        clock.advance(seconds=1)
    claimed = ChatDelivery(store, "w", clock=clock).claim_cards()
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    expected = [i for _, i in sorted(opened, key=lambda pair: order[pair[0]])]
    assert [card.escalation.id for card in claimed] == expected


def test_the_deadline_runs_from_posting_and_the_card_shows_it(
    timed: EscalationService,
    worker: SlackWorker,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    record, _ = timed.open_escalation(escalation(severity="high"))
    clock.advance(minutes=3)  # Slack was slow: the card is posted three minutes late
    assert worker.post_cards() == 1
    posted = timed.get_escalation(record.id)
    assert posted.next_action_at == clock.now + timedelta(minutes=5)
    [card] = fake.messages(TRIAGE)
    assert f"<!date^{int(posted.next_action_at.timestamp())}^" in json.dumps(card.blocks)
    clock.advance(minutes=4)  # past intake + 5m, inside posting + 5m
    assert timed.sweep_tiers() == (0, 0)
    clock.advance(minutes=1, seconds=1)
    assert timed.sweep_tiers() == (1, 0)
    assert not fake.calls("chat.getPermalink")  # derived, not asked for
    assert timed.get_escalation(record.id).cards[0].permalink == (
        f"https://fake-slack.test/archives/{TRIAGE}/p{card.ts.replace('.', '')}"
    )


def test_a_card_slack_never_takes_still_climbs_after_the_grace(
    store: Store, control: ControlPlane, directory: StaticDirectory, clock: ManualClock
) -> None:
    policy = parse_policy(POLICY_YAML.replace("unposted_grace: 0s", "unposted_grace: 5m").encode())
    assert policy.delivery.unposted_grace == timedelta(minutes=5)
    service = EscalationService(store, control, policy, directory=directory, clock=clock)
    service.open_escalation(escalation(severity="high"))
    clock.advance(minutes=5, seconds=1)
    assert service.sweep_tiers() == (0, 0)  # its card is not posted: the clock is held
    clock.advance(minutes=5)
    assert service.sweep_tiers() == (1, 0)  # … but not for ever


def _click(body: dict[str, Any], escalation_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return body, {"value": ButtonValue(escalation_id=escalation_id).dump()}


def test_a_flood_becomes_a_digest_whose_cards_open_and_decide_in_a_modal(
    timed: EscalationService,
    worker: SlackWorker,
    store: Store,
    fake: FakeSlack,
    client: WebClient,
    clock: ManualClock,
) -> None:
    opened = [
        timed.open_escalation(escalation(severity=("low", "medium")[i % 2]))[0] for i in range(12)
    ]
    assert worker.post_cards() == 0  # gathering
    clock.advance(seconds=3)
    assert worker.post_cards() == 12
    [digest] = fake.messages(TRIAGE)
    assert set(buttons_in(fake, TRIAGE)) == {record.id for record in opened}
    first = timed.get_escalation(opened[0].id)
    assert first.cards[0].ts is None and first.cards[0].digest_id is not None
    assert first.next_action_at == clock.now + timedelta(minutes=5)

    deps = Deps(timed, ChatDelivery(store, "listeners", clock=clock), clock=clock)
    open_button = next(
        e
        for block in digest.blocks
        if block["type"] == "actions"
        for e in block["elements"]
        if opened[0].id in e["value"]
    )
    body = {
        "user": {"id": OPERATOR},
        "trigger_id": "1.2.open",
        "channel": {"id": TRIAGE},
        "container": {"type": "message", "message_ts": digest.ts},
    }
    actions.open_card(body, open_button, client, None, deps=deps)
    [modal] = fake.views()
    assert any(
        e.get("action_id") == Action.APPROVE.value
        for block in modal["blocks"]
        for e in block.get("elements", [])
    )

    in_modal = {
        "user": {"id": OPERATOR},
        "trigger_id": "1.2.approve",
        "container": {"type": "view", "view_id": modal["id"]},
        "view": modal,
    }
    actions.decide(*_click(in_modal, opened[0].id), client, None, deps=deps, verdict="approve")
    assert timed.get_escalation(opened[0].id).state == "approved"
    redrawn = fake.view(modal["id"])
    assert "Approved" in json.dumps(redrawn["blocks"])  # the modal shows the decision

    worker.follow_audit()  # the digest is drawn again: it does not show it as waiting
    after = fake.message(TRIAGE, digest.ts)
    assert "(11 waiting)" in json.dumps(after.blocks)
    assert "✅" in json.dumps(after.blocks, ensure_ascii=False)


def test_a_paced_channel_leaves_cards_owed_and_other_channels_go_on(
    timed: EscalationService,
    client: WebClient,
    store: Store,
    policy: Policy,
    fake: FakeSlack,
    clock: ManualClock,
) -> None:
    pacer = ChannelPacer(burst=2, reserve=1)
    worker = SlackWorker(
        client, ChatDelivery(store, "w", clock=clock), policy, clock=clock, pacer=pacer
    )
    for _ in range(3):
        timed.open_escalation(escalation(severity="critical"))
    assert worker.post_cards() == 2  # the third waits for the channel's next token
    assert worker.delivery.pending_card_count() == 1
    assert worker._retry_at is not None  # the worker comes back when the token is due
    assert not any(c.failed for c in fake.calls("chat.postMessage"))
