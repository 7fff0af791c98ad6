"""The agent's side of the policy: `request_approval` answered by the policy at once, and
`finish` reported back (a finished task may be sampled for review)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis
from escbot_agent import AsyncTaskGuard, TaskGuard

from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.intake import Intake
from bot.keys import KeyNames
from bot.outcomes import OutcomesReader
from bot.policy import parse_policy
from tests.agent.conftest import eventually
from tests.agent.test_approval import Waiting
from tests.conftest import StaticDirectory
from tests.test_policy_service import policy_yaml


@pytest.fixture
def ruled(store: Store, control: ControlPlane, directory: StaticDirectory) -> EscalationService:
    return EscalationService(
        store, control, parse_policy(policy_yaml().encode()), directory=directory
    )


@pytest.fixture
def ruled_intake(redis_url: str, prefix: str, ruled: EscalationService) -> Iterator[Intake]:
    client = connect(redis_url)
    reader = Intake(client, KeyNames(prefix), ruled, consumer="test", block_ms=20)
    reader.ensure_group()
    yield reader
    client.close()


def test_request_approval_returns_at_once_for_a_policy_decision(
    make_guard: Callable[..., TaskGuard],
    ruled_intake: Intake,
    ruled: EscalationService,
    task_id: str,
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    small = Waiting(
        lambda: guard.request_approval(
            "issue_refund", {"amount": 70}, reason="small refund", confidence=0.9, timeout=10
        )
    )
    eventually(lambda: ruled_intake.poll_once(block_ms=20) or small.done, what="the decision")
    outcome = small.result()
    assert outcome.approved and outcome.by_policy and outcome.by == "policy"
    assert outcome.rule == "issue_refund"
    denied = Waiting(
        lambda: guard.request_approval("close_account", reason="customer asked", timeout=10)
    )
    eventually(lambda: ruled_intake.poll_once(block_ms=20) or denied.done, what="the denial")
    refused = denied.result()
    assert refused.decision == "rejected" and refused.rule == "close_account"


def test_the_asyncio_guard_gets_the_same_outcome(
    redis_url: str, prefix: str, ruled_intake: Intake, task_id: str
) -> None:
    async def scenario() -> tuple[str, str | None]:
        async with AsyncTaskGuard(task_id, url=redis_url, prefix=prefix, agent="bot") as guard:
            asking = asyncio.create_task(
                guard.request_approval(
                    "issue_refund", {"amount": 9}, reason="tiny", confidence=0.99, timeout=10
                )
            )
            while not asking.done():
                await asyncio.to_thread(ruled_intake.poll_once, 20)
            outcome = asking.result()
            return outcome.by, outcome.rule

    assert asyncio.run(scenario()) == ("policy", "issue_refund")


def test_a_finished_task_is_reported_and_sampled(
    make_guard: Callable[..., TaskGuard],
    ruled: EscalationService,
    redis_url: str,
    prefix: str,
    rdb: redis.Redis,
    task_id: str,
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    guard.finish(notice="Your refund of 70 EUR is on its way.", task_type="refund")
    [(_id, fields)] = rdb.xrange(f"{prefix}outcomes")
    assert fields["status"] == "completed" and fields["source"] == "agent"
    assert fields["task_id"] == task_id and fields["by"] == "billing-agent"
    client = connect(redis_url)
    reader = OutcomesReader(client, KeyNames(prefix), ruled, consumer="test", block_ms=20)
    reader.ensure_group()
    rdb.xadd(f"{prefix}outcomes", {"task_id": "bad id!", "status": "nope"})  # skipped
    while reader.poll_once(block_ms=20):
        pass
    client.close()
    [review] = ruled.overview().reviews
    assert review.subject == "task" and review.subject_id == task_id
    assert review.summary == "Your refund of 70 EUR is on its way."
    with pytest.raises(ValueError, match="completed' or 'failed"):
        guard.finish("terminated")  # type: ignore[arg-type]
