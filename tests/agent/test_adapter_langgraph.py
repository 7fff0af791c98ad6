"""escbot-agent[langgraph]: a real LangGraph graph without a model (a scripted model node),
its tool call decided through the bot's service: interrupt(), then Command(resume=...)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from escbot_agent import TaskGuard, TaskKilled
from escbot_agent.adapters.common import call_escalation_id
from escbot_agent.adapters.langgraph import ApprovalGate
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from bot.core import EscalationService
from bot.intake import Intake
from tests.agent.adapter_support import Running, decide
from tests.agent.conftest import REREAD, eventually, opened
from tests.conftest import OPERATOR

CALL_ID = "call-refund-1"


class Refunds:
    """A graph: model → approval → tools → model, with a scripted model node."""

    def __init__(self) -> None:
        self.refunded: list[dict[str, Any]] = []
        self.model_calls = 0

    def model(self, state: MessagesState) -> dict[str, Any]:
        self.model_calls += 1
        said = [m.content for m in state["messages"] if isinstance(m, ToolMessage)]
        if said:
            return {"messages": [AIMessage(content=f"tool said: {said[-1]}")]}
        call = {"name": "issue_refund", "args": {"amount": 740}, "id": CALL_ID}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    def tools(self, state: MessagesState) -> dict[str, Any]:
        last = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
        answers = []
        for call in last.tool_calls:
            args = {"currency": "EUR", **call["args"]}
            self.refunded.append(args)
            text = f"refunded {args['amount']} {args['currency']}"
            answers.append(ToolMessage(content=text, tool_call_id=call["id"]))
        return {"messages": answers}

    def run(self, guard: TaskGuard, **options: Any) -> Running[str]:
        gate = ApprovalGate(guard, tools={"issue_refund"}, **options)
        graph = StateGraph(MessagesState)
        graph.add_node("model", gate.before_model(self.model))
        graph.add_node("approval", gate.node)
        graph.add_node("tools", self.tools)
        graph.add_edge(START, "model")
        graph.add_conditional_edges("model", gate.after_model, ["approval", END])
        graph.add_conditional_edges("approval", gate.after_approval, ["tools", "model"])
        graph.add_edge("tools", "model")
        app = graph.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": guard.task_id}}

        def run() -> str:
            first = app.invoke({"messages": [HumanMessage("refund order 4711")]}, config)
            assert "__interrupt__" in first  # stopped, saved, for the decision
            result = gate.invoke(app, gate.decisions(first), config)
            return str(result["messages"][-1].content)

        return Running(run)


@pytest.fixture
def refunds() -> Refunds:
    return Refunds()


@pytest.mark.parametrize(
    "verdict, options, said, refunded",
    [
        ("approve", {}, "tool said: refunded 740 EUR", [{"amount": 740, "currency": "EUR"}]),
        (
            "approve",
            {"args": {"amount": 500, "currency": "EUR"}},
            "tool said: refunded 500 EUR",
            [{"amount": 500, "currency": "EUR"}],
        ),
        (
            "reject",
            {"comment": "never paid"},
            f"tool said: Not run: rejected by {OPERATOR}: never paid",
            [],
        ),
    ],
    ids=["approved", "edited", "rejected"],
)
def test_a_decision_resumes_the_graph(
    refunds: Refunds,
    make_guard: Callable[..., TaskGuard],
    intake: Intake,
    service: EscalationService,
    task_id: str,
    verdict: str,
    options: dict[str, Any],
    said: str,
    refunded: list[dict[str, Any]],
) -> None:
    run = refunds.run(make_guard(task_id))
    decide(intake, service, call_escalation_id(task_id, CALL_ID), verdict, **options)
    assert run.result(intake) == said
    assert refunds.refunded == refunded


def test_no_decision_in_time_is_expired_and_not_run(
    refunds: Refunds, make_guard: Callable[..., TaskGuard], intake: Intake, task_id: str
) -> None:
    run = refunds.run(make_guard(task_id), timeout=0.5)
    assert run.result(intake) == "tool said: No decision came in time; not run."
    assert refunds.refunded == []


def test_a_kill_while_waiting_stops_the_graph(
    refunds: Refunds,
    make_guard: Callable[..., TaskGuard],
    intake: Intake,
    service: EscalationService,
    task_id: str,
) -> None:
    run = refunds.run(make_guard(task_id))
    opened(intake, service, call_escalation_id(task_id, CALL_ID))
    service.kill(task_id, OPERATOR, "runaway")
    with pytest.raises(TaskKilled, match="runaway"):
        run.result(intake)
    assert refunds.refunded == [] and refunds.model_calls == 1


def test_a_pause_holds_the_next_model_call_and_a_kill_there_stops_it(
    refunds: Refunds,
    make_guard: Callable[..., TaskGuard],
    intake: Intake,
    service: EscalationService,
    task_id: str,
) -> None:
    run = refunds.run(make_guard(task_id))
    eid = call_escalation_id(task_id, CALL_ID)
    opened(intake, service, eid)
    service.pause(task_id, OPERATOR, "look first")
    service.decide(eid, OPERATOR, "approve")
    eventually(lambda: refunds.refunded, what="the approved tool to run")
    time.sleep(3 * REREAD)
    assert refunds.model_calls == 1 and not run.done  # the checkpoint before the model holds
    service.kill(task_id, OPERATOR, "stop while paused")
    with pytest.raises(TaskKilled, match="stop while paused"):
        run.result(intake)
    assert refunds.model_calls == 1


def test_a_pause_lifted_lets_the_graph_finish(
    refunds: Refunds,
    make_guard: Callable[..., TaskGuard],
    intake: Intake,
    service: EscalationService,
    task_id: str,
) -> None:
    run = refunds.run(make_guard(task_id))
    eid = call_escalation_id(task_id, CALL_ID)
    opened(intake, service, eid)
    service.pause(task_id, OPERATOR, "look first")
    service.decide(eid, OPERATOR, "approve")
    eventually(lambda: refunds.refunded, what="the approved tool to run")
    service.resume(task_id, OPERATOR)
    assert run.result(intake) == "tool said: refunded 740 EUR"
    assert refunds.model_calls == 2
