"""What to post next (bot/core/delivery_plan.py) and each channel's pace
(bot/slack/pacing.py): pure parts, on a clock of the test's own."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.core.delivery import PendingCard
from bot.core.delivery_plan import GATHER, deadline_of, plan
from bot.policy import parse_policy
from bot.slack.pacing import ChannelPacer, PacingWatch
from tests.conftest import POLICY_YAML
from tests.test_blocks import BASE, NOW, OPENED

POLICY = parse_policy(POLICY_YAML.encode())


def pending(i: int, severity: str, channel: str = "C0TRIAGE", age: float = 10) -> PendingCard:
    view = replace(BASE, id=f"esc-{i}", severity=severity)
    return PendingCard(i, channel, "triage", 0, view, i, NOW - timedelta(seconds=age))


def fits_ten(items: object) -> int:
    return 10


def test_urgent_cards_go_first_one_by_one_and_a_flood_of_calm_ones_as_digests() -> None:
    cards = [pending(1, "critical"), pending(2, "high")] + [
        pending(i, ("low", "medium")[i % 2]) for i in range(3, 28)
    ]
    todo = plan(cards, digest_over=10, now=NOW, digest_capacity=fits_ten)
    assert [(s.digest, len(s.cards)) for s in todo.sends] == [
        (False, 1),
        (False, 1),
        (True, 10),
        (True, 10),
        (True, 5),
    ]
    assert [s.urgent for s in todo.sends] == [True, True, False, False, False]
    assert not todo.held


def test_at_most_digest_over_calm_cards_go_one_by_one() -> None:
    cards = [pending(i, "low") for i in range(10)] + [pending(20, "low", "C0OTHER")]
    todo = plan(cards, digest_over=10, now=NOW, digest_capacity=fits_ten)
    assert [s.digest for s in todo.sends] == [False] * 11


def test_calm_cards_gather_for_a_moment_urgent_ones_never_wait() -> None:
    cards = [pending(1, "critical", age=0)] + [pending(i, "low", age=0.5) for i in range(2, 30)]
    todo = plan(cards, digest_over=10, now=NOW, digest_capacity=fits_ten)
    assert [s.cards[0].card_id for s in todo.sends] == [1]
    assert len(todo.held) == 28
    assert todo.wake_at == NOW - timedelta(seconds=0.5) + GATHER


def test_the_deadline_runs_from_posting_while_a_clock_runs_in_that_tier() -> None:
    card = pending(1, "high")
    assert deadline_of(POLICY, card, NOW) == NOW + timedelta(minutes=5)
    severity_rule = replace(card, escalation=replace(card.escalation, ack_timeout=timedelta(60)))
    assert deadline_of(POLICY, severity_rule, NOW) == NOW + timedelta(60)
    acknowledged = replace(card.escalation, state="acknowledged", next_action_at=None)
    assert deadline_of(POLICY, replace(card, escalation=acknowledged), NOW) is None
    climbed = replace(card.escalation, tier="review")
    assert deadline_of(POLICY, replace(card, escalation=climbed), NOW) is None
    assert OPENED < NOW


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_channel_takes_a_burst_then_a_message_a_second() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=3, reserve=1, clock=clock)
    assert [pacer.try_take("C1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.try_take("C1") == 1.0
    assert pacer.try_take("C2") == 0.0  # channels are paced apart
    clock.now = 1.0
    assert pacer.try_take("C1") == 0.0
    assert pacer.try_take("C1") > 0


def test_calm_messages_leave_a_reserve_for_urgent_ones() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=4, reserve=2, clock=clock)
    assert pacer.try_take("C1", urgent=False) == 0.0
    assert pacer.try_take("C1", urgent=False) == 0.0
    assert pacer.try_take("C1", urgent=False) == 1.0  # two left: kept for urgent ones
    assert pacer.try_take("C1") == 0.0
    assert pacer.try_take("C1") == 0.0


def test_a_429_holds_the_channel_for_retry_after() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=10, clock=clock)
    watch = PacingWatch(pacer)
    request = HttpRequest(
        method="POST",
        url="https://slack.com/api/chat.postMessage",
        headers={},
        data=b'{"channel": "C1", "text": "hi"}',
    )
    response = HttpResponse(status_code=429, headers={"Retry-After": ["3"]})
    assert watch.can_retry(state=RetryState(), request=request, response=response) is False
    assert pacer.try_take("C1") == 3.0
    assert pacer.try_take("C2") == 0.0
    clock.now = 3.0
    assert pacer.try_take("C1") > 0  # empty after the hold: a slow start
    clock.now = 4.0
    assert pacer.try_take("C1") == 0.0


def test_several_messages_are_taken_together_or_not_at_all() -> None:
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=6, reserve=2, clock=clock)
    assert pacer.try_take("C1", urgent=False, count=3) == 0.0  # 3 left
    assert pacer.try_take("C1", urgent=False, count=2) == 1.0  # would leave 1 < reserve
    assert pacer.try_take("C1", urgent=False, count=1) == 0.0
    assert pacer.try_take("C1", count=50) > 0  # asked as a burst's worth: 6
