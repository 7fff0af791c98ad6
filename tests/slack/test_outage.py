"""Slack unreachable: one warning when it goes, one when it is back (with the count of
failed attempts in between), no traceback, whichever part of the bot meets the outage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import redis
from slack_sdk import WebClient

from blocks.modals import reject_modal
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import Policy
from bot.slack.agent_events import AgentEventsRelay
from bot.slack.client import make_web_client
from bot.slack.outage import Outage
from bot.slack.pacing import ChannelPacer
from bot.slack.worker import SlackWorker
from handlers import actions
from handlers.deps import Deps
from handlers.errors import SLACK_DOWN
from tests.conftest import OPERATOR
from tests.slack.test_listeners import Recorder, button, click_body
from tests.support.clock import ManualClock
from tests.support.factories import escalation
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def outage() -> Outage:
    return Outage()


@pytest.fixture
def client(fake: FakeSlack, outage: Outage) -> WebClient:
    return make_web_client("xoxb-test", fake.api_url, outage=outage)


@pytest.fixture
def timed_service(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: ManualClock
) -> EscalationService:
    return make_service(control, clock=clock)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_outage_is_said_once_and_its_end_once_with_the_count() -> None:
    seconds = [100.0]
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                lines.append(record.getMessage())

    logger = logging.getLogger("tests.outage")
    logger.addHandler(Lines())
    outage = Outage(logger=logger, clock=lambda: seconds[0])
    outage.reachable()  # nothing was down: nothing to say
    for _ in range(3):
        outage.failed("HTTP 503")
    assert outage.down and outage.failures == 3
    seconds[0] += 42
    outage.reachable()
    outage.reachable()
    assert lines == [
        "Slack is unreachable (HTTP 503); what is owed to it waits and is retried",
        "Slack is reachable again after 42s (3 failed attempt(s) meanwhile)",
    ]
    assert not outage.down and outage.failures == 0


# Which database holds the outbox does not matter here; every 503 costs slack_sdk's retry.
@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_slack_down_is_one_warning_for_the_worker_the_relay_and_the_listeners(
    timed_service: EscalationService,
    store: Store,
    policy: Policy,
    fake: FakeSlack,
    client: WebClient,
    outage: Outage,
    clock: ManualClock,
    rdb: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = timed_service
    delivery = ChatDelivery(store, "worker", clock=clock)
    # Pacing out of the way (it counts failed posts as Slack does): every tick tries all.
    unpaced = ChannelPacer(rate=10_000)
    worker = SlackWorker(client, delivery, policy, clock=clock, pacer=unpaced)
    relay = AgentEventsRelay(rdb, KeyNames(prefix), client, service, policy, consumer="t")
    posted, _ = service.open_escalation(escalation())
    worker.tick()  # Slack up: its card is posted, the relay has a thread to post into
    assert fake.messages("C0TRIAGE")

    caplog.set_level(logging.DEBUG)
    caplog.clear()
    fake.set_down(True)
    waiting = [service.open_escalation(escalation())[0] for _ in range(2)]
    service.kill("refund-outage-1", OPERATOR, "looping")  # an announcement owed too
    respond = Recorder()
    body = click_body(OPERATOR, trigger_id="1.2.abc", channel={"id": "C0TRIAGE"})
    for _ in range(2):
        worker.tick()
        clock.advance(minutes=2)  # past every backoff: each tick tries every card again
        relay.handle("1-0", {"task_id": posted.task_id, "text": "still here"}, 1)
        actions.open_decision_modal(
            body,
            button(posted.id),
            client,
            respond,
            deps=Deps(service, delivery, policy),
            verdict="reject",
            build=reject_modal,
        )
    assert outage.failures >= 2 * (len(waiting) + 3)  # cards, the announcement, relay, modal
    assert respond.texts == [SLACK_DOWN] * 2  # the person is told, not left guessing
    during = warnings_of(caplog)
    assert [record.getMessage() for record in during] == [
        "Slack is unreachable (HTTP 503); what is owed to it waits and is retried"
    ]
    assert all(record.exc_info is None for record in caplog.records)  # never a traceback

    caplog.clear()
    failures = outage.failures
    fake.set_down(False)
    worker.tick()
    [back] = warnings_of(caplog)
    assert back.getMessage().startswith("Slack is reachable again after ")
    assert f"({failures} failed attempt(s) meanwhile)" in back.getMessage()
    for record in waiting:
        assert service.get_escalation(record.id).cards[0].ts is not None  # nothing was lost
    assert any("refund-outage-1" in message.text for message in fake.messages("C0TRIAGE"))


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_an_unreachable_slack_is_counted_without_tracebacks(
    timed_service: EscalationService,
    store: Store,
    policy: Policy,
    outage: Outage,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens at all (connection refused), rather than Slack answering 503."""
    stopped = FakeSlack().start()
    url = stopped.api_url
    stopped.stop()
    client = make_web_client("xoxb-test", url, outage=outage)
    worker = SlackWorker(client, ChatDelivery(store, "worker", clock=clock), policy, clock=clock)
    timed_service.open_escalation(escalation())
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        worker.tick()
        clock.advance(minutes=2)
    [line] = warnings_of(caplog)
    assert line.getMessage().startswith("Slack is unreachable (URLError: [Errno 111]")
    assert outage.failures == 3
    assert all(record.exc_info is None for record in caplog.records)
