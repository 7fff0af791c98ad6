"""The fleet as the bot shows it (CONTRACTS §10), and agent-wide stops, through the
service, Redis and both databases. The guards' side is in tests/agent."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis
from pydantic import ValidationError

from bot.contracts import Escalation
from bot.control import ControlPlane
from bot.core import EscalationService
from bot.errors import InvalidId, NotAllowed
from bot.summaries import PlainStyle, overview_sections, plain, status_sections
from tests.conftest import OPERATOR, STRANGER
from tests.test_sweep import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet_service(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: Clock
) -> EscalationService:
    return make_service(control, clock=clock)


def report(rdb: redis.Redis, prefix: str, clock: Clock, task_id: str, **fields: str) -> None:
    """A guard's heartbeat, as the SDK writes it."""
    values = {"agent": "billing", "task_type": "refund", "state": "running", "step": "3"}
    rdb.hset(f"{prefix}task:{task_id}", mapping=values | fields)
    rdb.expire(f"{prefix}task:{task_id}", 30)
    rdb.zadd(f"{prefix}tasks", {task_id: clock.now.timestamp()})


def test_live_and_lost_tasks_are_listed(
    fleet_service: EscalationService, rdb: redis.Redis, prefix: str, clock: Clock
) -> None:
    report(rdb, prefix, clock, "gone-quiet")
    report(rdb, prefix, clock, "finished-ok", state="finished")
    rdb.zadd(f"{prefix}tasks:ended", {"finished-ok": clock.now.timestamp()})
    clock.advance(seconds=31)
    report(rdb, prefix, clock, "alive", state="paused", step="ledger")
    overview = fleet_service.overview()
    assert [t.task_id for t in overview.live_tasks] == ["alive"]
    assert overview.live_tasks[0].state == "paused" and overview.live_tasks[0].step == "ledger"
    assert [t.task_id for t in overview.lost_tasks] == ["gone-quiet"]
    text = plain(overview_sections(overview, PlainStyle()))
    assert "live tasks: 1" in text and "alive · billing · paused · step ledger" in text
    assert "lost tasks" in text and "gone-quiet" in text


def test_status_shows_what_the_guard_reported(
    fleet_service: EscalationService, rdb: redis.Redis, prefix: str, clock: Clock
) -> None:
    report(rdb, prefix, clock, "t1", state="waiting")
    status = fleet_service.status("t1")  # known only from its guard
    assert status.live is not None and status.live.state == "waiting"
    text = plain(status_sections(status, PlainStyle()))
    assert "task t1: waiting" in text and "guard: t1 · billing · waiting" in text


def test_acting_on_a_task_never_seen_still_acts_and_says_so(
    fleet_service: EscalationService, rdb: redis.Redis, prefix: str, clock: Clock
) -> None:
    early = fleet_service.kill("typo-task-123", OPERATOR, "just in case")
    assert "No guard of typo-task-123 has reported in the last 24 h" in early.message
    assert rdb.exists(f"{prefix}kill:typo-task-123")
    report(rdb, prefix, clock, "seen-1")
    assert "No guard" not in fleet_service.pause("seen-1", OPERATOR).message
    redirect = fleet_service.redirect("typo-task-123", OPERATOR, "stop")
    assert "the instruction waits in its inbox" in redirect.message


def test_agent_wide_stops_set_lift_and_refuse(
    fleet_service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    killed = fleet_service.kill("agent:billing", OPERATOR, "runaway agent")
    assert "every task of billing" in killed.message
    assert json.loads(rdb.get(f"{prefix}kill:agent:billing") or "{}")["by"] == OPERATOR
    paused = fleet_service.pause("agent:support", OPERATOR)
    assert rdb.exists(f"{prefix}pause:agent:support") and "every task of support" in paused.message
    assert fleet_service.status("agent:billing").killed is not None
    fleet_service.revive("agent:billing", OPERATOR)
    fleet_service.resume("agent:support", OPERATOR)
    assert not rdb.exists(f"{prefix}kill:agent:billing", f"{prefix}pause:agent:support")
    with pytest.raises(NotAllowed, match="operator role"):
        fleet_service.kill("agent:billing", STRANGER)
    with pytest.raises(InvalidId, match="reserved for agent-wide stops"):
        fleet_service.redirect("agent:billing", OPERATOR, "everyone stop")
    with pytest.raises(InvalidId, match="invalid agent name"):
        fleet_service.kill("agent:no spaces", OPERATOR)


def test_agent_wide_kills_are_written_back_like_task_kills(
    fleet_service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    fleet_service.kill("agent:billing", OPERATOR)
    rdb.delete(f"{prefix}kill:agent:billing")
    reconciled = fleet_service.reconcile()
    assert f"{prefix}kill:agent:billing" in reconciled.restored


def test_a_task_id_beginning_with_agent_is_refused_everywhere(
    fleet_service: EscalationService,
) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Escalation.model_validate({"task_id": "agent:x", "reason": "r"})
    with pytest.raises(InvalidId, match="reserved"):
        fleet_service.relay_message("agent:x", OPERATOR, "hi")
