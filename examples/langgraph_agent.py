"""A LangGraph refund agent that asks the bot before it refunds (escbot-agent[langgraph]).

    python examples/langgraph_agent.py --task-id lg-1

No model and no network: the model node is scripted (it asks for a 740 EUR refund, then
reports what the tool said). The graph stops at the approval node with interrupt(), and
is resumed with Command(resume=...) when the decision lands: decide it in Slack or with
`escbot decide <escalation id> approve --by alice` (or `--args '{"amount": 500}'`,
or `reject --comment ...`). `escbot kill lg-1 --reason ... --by alice` stops it at the
next model call (exit 3); `escbot pause lg-1 ...` holds it there. It reads `REDIS_URL` and
`REDIS_KEY_PREFIX` like the bot.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from escbot_agent import TaskGuard, TaskKilled
from escbot_agent.adapters.langgraph import ApprovalGate
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

EXIT_KILLED = 3


def model(state: MessagesState) -> dict[str, Any]:
    said = [m.content for m in state["messages"] if isinstance(m, ToolMessage)]
    if said:
        return {"messages": [AIMessage(content=f"done: {said[-1]}")]}
    call = {"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}, "id": "refund-1"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def tools(state: MessagesState) -> dict[str, Any]:
    last = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
    return {
        "messages": [
            ToolMessage(
                content=f"refunded {call['args']['amount']} {call['args'].get('currency', 'EUR')}",
                tool_call_id=call["id"],
            )
            for call in last.tool_calls
        ]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--agent", default="langgraph-demo")
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args()
    try:
        with TaskGuard(options.task_id, agent=options.agent, task_type="refund") as guard:
            gate = ApprovalGate(
                guard,
                tools={"issue_refund"},
                timeout=options.timeout,
                reason="refund above the 500 EUR limit",
            )
            graph = StateGraph(MessagesState)
            graph.add_node("model", gate.before_model(model))
            graph.add_node("approval", gate.node)
            graph.add_node("tools", tools)
            graph.add_edge(START, "model")
            graph.add_conditional_edges("model", gate.after_model, ["approval", END])
            graph.add_conditional_edges("approval", gate.after_approval, ["tools", "model"])
            graph.add_edge("tools", "model")
            app = graph.compile(checkpointer=InMemorySaver())
            config = {"configurable": {"thread_id": options.task_id}}
            result = app.invoke({"messages": [HumanMessage("refund order 4711")]}, config)
            for pending in result.get("__interrupt__", ()):
                for request in pending.value.get("escbot-approval", ()):
                    print(
                        f"waiting for approval: escalation {request['escalation_id']}", flush=True
                    )
            result = gate.invoke(app, gate.decisions(result), config)
            print(result["messages"][-1].content, flush=True)
            guard.finish(notice=str(result["messages"][-1].content))
    except TaskKilled as killed:
        print(f"killed by {killed.by}: {killed.reason}", flush=True)
        return EXIT_KILLED
    return 0


if __name__ == "__main__":
    sys.exit(main())
