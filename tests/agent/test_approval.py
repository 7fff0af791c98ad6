"""Escalations, approvals and the thread, through the bot's real intake and service."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import redis
from escbot_agent import ApprovalOutcome, TaskGuard, TaskKilled
from pydantic import ValidationError

from bot.contracts import json_schemas
from bot.core import EscalationService
from bot.errors import InvalidId
from bot.intake import Intake
from tests.agent.conftest import eventually, opened, pending_count
from tests.conftest import ADMIN, OPERATOR

Guards = Callable[..., TaskGuard]


class Waiting:
    """`request_approval` in a thread, as the agent's loop would block on it."""

    def __init__(self, call: Callable[[], ApprovalOutcome]) -> None:
        self.outcome: ApprovalOutcome | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], ApprovalOutcome]) -> None:
        try:
            self.outcome = call()
        except BaseException as exc:
            self.error = exc

    def result(self) -> ApprovalOutcome:
        self._thread.join(10)
        assert not self._thread.is_alive(), "request_approval did not return"
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


def ask(guard: TaskGuard, escalation_id: str, **options: Any) -> Waiting:
    options.setdefault("timeout", 10)
    return Waiting(
        lambda: guard.request_approval(
            "issue_refund",
            {"amount": 740, "currency": "EUR"},
            reason="refund above the 500 EUR limit",
            severity="high",
            confidence=0.62,
            context={"policy_rule": "refunds.limit", "state": {"step": 3}},
            escalation_id=escalation_id,
            **options,
        )
    )


def new_id() -> str:
    return f"esc-{uuid.uuid4().hex[:12]}"


def test_an_approval_waits_and_is_approved(
    make_guard: Guards, intake: Intake, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    eid = new_id()
    waiting = ask(guard, eid)
    view = opened(intake, service, eid)
    assert (view.task_id, view.agent, view.kind, view.severity) == (
        task_id,
        "billing-agent",
        "approval",
        "high",
    )
    assert view.action == {"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}}
    assert view.context["policy_rule"] == "refunds.limit" and view.confidence == 0.62
    assert not waiting.done  # nobody decided yet

    service.decide(eid, OPERATOR, "approve", comment="go ahead")
    outcome = waiting.result()
    assert outcome.approved
    assert (outcome.decision, outcome.by, outcome.comment, outcome.escalation_id) == (
        "approved",
        OPERATOR,
        "go ahead",
        eid,
    )


def test_a_rejection_carries_its_comment(
    make_guard: Guards, intake: Intake, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    eid = new_id()
    waiting = ask(guard, eid)
    opened(intake, service, eid)
    service.decide(eid, OPERATOR, "reject", comment="the order was never paid")
    outcome = waiting.result()
    assert (outcome.decision, outcome.comment, outcome.approved) == (
        "rejected",
        "the order was never paid",
        False,
    )


def test_a_redirect_gives_its_instruction_once(
    make_guard: Guards,
    intake: Intake,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    guard = make_guard(task_id, consumer="worker")
    eid = new_id()
    waiting = ask(guard, eid)
    opened(intake, service, eid)
    service.decide(eid, OPERATOR, "redirect", instruction="refund 500 EUR and escalate the rest")
    outcome = waiting.result()
    assert outcome.decision == "redirected"
    assert outcome.instruction == "refund 500 EUR and escalate the rest"

    # The decision also wrote an inbox redirect with the escalation id: not handed out again.
    inbox = f"{prefix}inbox:{task_id}"
    assert [f["escalation_id"] for _id, f in rdb.xrange(inbox)] == [eid]
    assert guard.checkpoint() == []
    assert guard.checkpoint() == []
    assert pending_count(rdb, inbox, "worker") == 0
    # A redirect the operator types on their own is delivered as usual.
    service.redirect(task_id, OPERATOR, "stop after this refund")
    assert [m.text for m in eventually(guard.checkpoint)] == ["stop after this refund"]


def test_no_decision_in_time_is_expired_never_rejected(
    make_guard: Guards,
    intake: Intake,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    guard = make_guard(task_id)
    eid = new_id()
    outcome = ask(guard, eid, timeout=0.3).result()
    assert (outcome.decision, outcome.by, outcome.approved) == ("expired", "timeout", False)
    assert "no decision within 0.3s" in (outcome.comment or "")
    assert opened(intake, service, eid).state == "open"  # the bot was told, not overruled
    events = [fields for _id, fields in rdb.xrange(f"{prefix}agent-events")]
    assert events == [
        {
            "task_id": task_id,
            "escalation_id": eid,
            "text": "stopped waiting for a decision after 0.3s (expired)",
        }
    ]


def test_terminate_ends_the_wait_and_kills_the_task(
    make_guard: Guards, intake: Intake, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    eid = new_id()
    waiting = ask(guard, eid)
    opened(intake, service, eid)
    service.decide(eid, OPERATOR, "terminate", comment="fraud")
    assert waiting.result().decision == "terminated"
    eventually(lambda: guard.state == "killed")
    with pytest.raises(TaskKilled) as caught:
        guard.checkpoint()
    assert caught.value.control.escalation_id == eid


def test_a_kill_while_waiting_raises(
    make_guard: Guards, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    waiting = ask(guard, new_id())
    service.kill(task_id, OPERATOR, "enough")
    with pytest.raises(TaskKilled):
        waiting.result()


def test_asking_again_with_a_decided_id_returns_the_decision_at_once(
    make_guard: Guards,
    intake: Intake,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    """A restarted agent that reuses its escalation id resumes instead of asking twice."""
    guard = make_guard(task_id)
    eid = new_id()
    waiting = ask(guard, eid)
    opened(intake, service, eid)
    service.decide(eid, OPERATOR, "approve")
    waiting.result()
    length = rdb.xlen(f"{prefix}escalations")
    assert ask(guard, eid, timeout=1).result().decision == "approved"
    assert rdb.xlen(f"{prefix}escalations") == length


def test_escalate_is_idempotent_and_contract_valid(
    make_guard: Guards,
    intake: Intake,
    service: EscalationService,
    task_id: str,
    rdb: redis.Redis,
    prefix: str,
) -> None:
    guard = make_guard(task_id, agent="billing-agent")
    eid = guard.escalate(
        "the ledger and the order disagree",
        kind="review",
        severity="critical",
        task_type="refund",
        context={"source": "order #8812", "tool_calls": [{"name": "lookup", "result": "paid"}]},
    )
    assert guard.escalate("the ledger and the order disagree", escalation_id=eid) == eid
    while intake.poll_once(block_ms=20):
        pass
    assert (intake.stats.opened, intake.stats.duplicates, intake.stats.rejected) == (1, 1, 0)
    view = service.get_escalation(eid)
    assert (view.kind, view.severity, view.task_type) == ("review", "critical", "refund")

    schema = json_schemas()["escalation"]
    for _id, fields in rdb.xrange(f"{prefix}escalations"):
        jsonschema.validate(json.loads(fields["payload"]), schema)


def test_bad_escalations_are_refused_before_anything_is_written(
    make_guard: Guards, task_id: str, rdb: redis.Redis, prefix: str
) -> None:
    guard = make_guard(task_id)
    with pytest.raises(ValidationError):
        guard.escalate("too sure", confidence=1.5)
    with pytest.raises(ValidationError):
        guard.escalate("   ")
    with pytest.raises(ValueError, match="without an action"):
        guard.escalate("args alone", args={"a": 1})
    with pytest.raises(ValidationError):
        guard.request_approval("x", reason="bad id", timeout=1, escalation_id="not an id")
    with pytest.raises(ValueError, match="timeout"):
        guard.request_approval("x", reason="r", timeout=0)
    assert rdb.xlen(f"{prefix}escalations") == 0


def test_say_writes_to_the_thread_of_an_escalation(
    make_guard: Guards, task_id: str, rdb: redis.Redis, prefix: str
) -> None:
    guard = make_guard(task_id)
    entry = guard.say("  refund issued: 500 EUR  ", "esc-42")
    assert rdb.xrange(f"{prefix}agent-events") == [
        (entry, {"task_id": task_id, "escalation_id": "esc-42", "text": "refund issued: 500 EUR"})
    ]
    guard.say("no escalation to speak of")
    assert rdb.xrange(f"{prefix}agent-events")[-1][1]["escalation_id"] == ""
    with pytest.raises(InvalidId):
        guard.say("hi", "bad id")
    with pytest.raises(ValidationError):
        guard.say("")


def test_the_agent_acts_on_the_arguments_as_edited(
    make_guard: Guards, intake: Intake, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    eid = new_id()
    schema = {"type": "object", "properties": {"amount": {"type": "integer", "maximum": 740}}}
    waiting = ask(guard, eid, schema=schema)
    view = opened(intake, service, eid)
    assert view.action is not None and view.action["schema"] == schema
    service.decide(eid, OPERATOR, "approve", args={"amount": 500, "currency": "EUR"})
    outcome = waiting.result()
    assert outcome.approved and outcome.edited
    assert outcome.args == {"amount": 500, "currency": "EUR"}


def test_an_unedited_approval_hands_back_the_proposed_arguments(
    make_guard: Guards, intake: Intake, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    eid = new_id()
    waiting = ask(guard, eid)
    opened(intake, service, eid)
    service.decide(eid, OPERATOR, "approve")
    outcome = waiting.result()
    assert not outcome.edited and outcome.args == {"amount": 740, "currency": "EUR"}


def test_a_quorum_asked_by_the_agent_waits_for_every_approver(
    make_guard: Guards, intake: Intake, service: EscalationService, task_id: str
) -> None:
    guard = make_guard(task_id)
    eid = new_id()
    waiting = ask(guard, eid, approvals=2)
    assert opened(intake, service, eid).approvals_needed == 2
    service.decide(eid, OPERATOR, "approve")
    assert not waiting.done
    service.decide(eid, ADMIN, "approve")
    outcome = waiting.result()
    assert outcome.approved and outcome.approvals == (OPERATOR, ADMIN)
    rejected = new_id()
    vetoed = ask(guard, rejected, approvals=2)
    opened(intake, service, rejected)
    service.decide(rejected, OPERATOR, "approve")
    service.decide(rejected, ADMIN, "reject", comment="no")
    assert vetoed.result().decision == "rejected" and vetoed.result().args is None
