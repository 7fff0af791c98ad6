"""The agent SDK as its own package: what installing and importing it costs, and what an
adapter adds to a tool call the policy approves alone.

    .venv/bin/python bench/sdk.py [--installs 3] [--imports 20] [--calls 200]

(a) Install size and time, in fresh venvs on this machine, from the same local wheelhouse
    (tests/support/wheelhouse.py: the wheels built here, the dependencies repacked from
    this environment; no network): `escbot-agent` against the whole bot
    (`agent-escalation-bot`). Median and max seconds, MB on disk, distributions.
(b) Import time in a fresh process of that venv: `import escbot_agent`, against its floor
    (`import redis, pydantic`) and against the bot's `import bot.cli` in the bot's venv.
(c) Adapter overhead per tool call with an `auto` policy decision: one agent run with one
    tool call, the tool behind the adapter (escalation → the bot's intake in a thread, as
    in `escbot serve` → `decision:{id}` → the call runs) against the same run with the
    tool not gated, and against the SDK's bare `request_approval` in the same run. Median
    and p99 ms per run; overhead = gated - ungated.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import Agent, ModelSettings, Runner, Tool, function_tool, set_tracing_disabled
from agents.items import ModelResponse as OAResponse
from agents.models.interface import Model, ModelTracing
from agents.testing.model import assistant_message, function_call
from agents.usage import Usage
from escbot_agent import AsyncTaskGuard, TaskGuard
from escbot_agent.adapters.langgraph import ApprovalGate
from escbot_agent.adapters.openai_agents import EscbotApprovals
from escbot_agent.adapters.pydantic_ai import EscbotCapability
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic_ai import Agent as PAgent
from pydantic_ai import Tool as PTool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from bench.common import REDIS_URL, database, percentile, save, summary
from bench.policy import AUTO_POLICY
from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.intake import Intake
from bot.keys import KeyNames
from bot.policy import parse_policy
from tests.support.wheelhouse import ROOT, SDK, fresh_install, wheelhouse_for

ARGS = {"amount": 20, "currency": "EUR"}
OPTIONS = {"confidence": 0.9}


def ms(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples) * 1e3:7.2f} ms   "
        f"p99 {percentile(samples, 0.99) * 1e3:7.2f} ms"
    )


# ---------------------------------------------------------------------- (a) and (b)


def bench_install(installs: int, imports: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        house = wheelhouse_for(base / "wheels", {"escbot-agent": SDK, "agent-escalation-bot": ROOT})
        print(
            f"  wheelhouse: {len(list(house.glob('*.whl')))} wheels in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        venvs: dict[str, Path] = {}
        for label, requirement in (
            ("escbot-agent", "escbot-agent"),
            ("whole bot", "agent-escalation-bot"),
        ):
            runs = []
            for i in range(installs):
                venv = base / f"{requirement}-{i}"
                runs.append(fresh_install(house, venv, requirement))
                venvs[label] = venv
            seconds = [run.seconds for run in runs]
            result[label] = {
                "install_median_s": statistics.median(seconds),
                "install_max_s": max(seconds),
                "mb": runs[0].bytes_on_disk / 1e6,
                "distributions": len(runs[0].distributions),
            }
            print(
                f"  install {label:<13} median {statistics.median(seconds):5.2f} s   "
                f"max {max(seconds):5.2f} s   {runs[0].bytes_on_disk / 1e6:6.1f} MB   "
                f"{len(runs[0].distributions)} distributions",
                flush=True,
            )
        sdk, bot = result["escbot-agent"], result["whole bot"]
        result["ratio_mb"] = bot["mb"] / sdk["mb"]
        result["ratio_install_median"] = bot["install_median_s"] / sdk["install_median_s"]
        print(
            f"  whole bot / escbot-agent: {result['ratio_mb']:.1f} times the disk, "
            f"{result['ratio_install_median']:.1f} times the install time"
        )
        result["import"] = bench_imports(venvs, imports)
    return result


def _import_seconds(python: Path, statement: str, runs: int) -> list[float]:
    code = f"import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    return [
        float(
            subprocess.run(
                [str(python), "-I", "-c", code],
                capture_output=True,
                text=True,
                check=True,
                cwd=python.parent,
            ).stdout
        )
        for _ in range(runs)
    ]


def bench_imports(venvs: dict[str, Path], runs: int) -> dict[str, Any]:
    cases = [
        ("import escbot_agent", venvs["escbot-agent"], "import escbot_agent"),
        ("import redis, pydantic", venvs["escbot-agent"], "import redis, pydantic"),
        ("import bot.cli (bot venv)", venvs["whole bot"], "import bot.cli"),
    ]
    result: dict[str, Any] = {}
    for label, venv, statement in cases:
        samples = _import_seconds(venv / "bin" / "python", statement, runs)
        result[label] = summary(samples)
        print(f"  {label:<27} {ms(samples)}", flush=True)
    sdk = result["import escbot_agent"]["median_ms"]
    result["ratio_sdk_over_floor"] = sdk / result["import redis, pydantic"]["median_ms"]
    result["ratio_bot_over_sdk"] = result["import bot.cli (bot venv)"]["median_ms"] / sdk
    print(
        f"  escbot_agent / its floor: {result['ratio_sdk_over_floor']:.2f}; "
        f"bot.cli / escbot_agent: {result['ratio_bot_over_sdk']:.1f}"
    )
    return result


# ---------------------------------------------------------------------- (c)


@contextmanager
def bot_with_auto_policy() -> Iterator[str]:
    """The bot's intake in a thread with a policy that approves small refunds alone; the
    key prefix it serves."""
    prefix = f"escbot-bench:{uuid.uuid4().hex[:8]}:"
    client = connect(REDIS_URL)
    with database("sqlite") as url:
        store = Store.from_url(url)
        service = EscalationService(
            store, ControlPlane(client, KeyNames(prefix)), parse_policy(AUTO_POLICY.encode())
        )
        intake = Intake(connect(REDIS_URL, timeout=5), KeyNames(prefix), service, block_ms=100)
        stop = threading.Event()
        thread = threading.Thread(target=intake.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield prefix
        finally:
            stop.set()
            thread.join(5)
            store.dispose()
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def refund(amount: int, currency: str = "EUR") -> str:
    """Refund the order."""
    return f"refunded {amount} {currency}"


async def measure(run: Callable[[], Awaitable[Any]], count: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        await run()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return samples


def pydantic_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if any(isinstance(p, ToolReturnPart) for m in messages for p in getattr(m, "parts", [])):
        return ModelResponse(parts=[TextPart("done")])
    call = ToolCallPart("issue_refund", ARGS, tool_call_id=f"c-{uuid.uuid4().hex[:12]}")
    return ModelResponse(parts=[call])


class OpenAIModel(Model):
    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        **kwargs: Any,
    ) -> OAResponse:
        usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
        items = input if isinstance(input, list) else []
        if any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items):
            return OAResponse([assistant_message("done")], usage, None)
        call = function_call("issue_refund", ARGS, call_id=f"c-{uuid.uuid4().hex[:12]}")
        return OAResponse([call], usage, None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


async def bench_async_adapters(prefix: str, count: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    async with AsyncTaskGuard("bench-sdk", url=REDIS_URL, prefix=prefix, agent="bench") as guard:

        async def bare() -> None:
            outcome = await guard.request_approval(
                "issue_refund", ARGS, reason="small refund", timeout=5, confidence=0.9
            )
            assert outcome.by == "policy", outcome

        samples["request_approval (bare SDK)"] = await measure(bare, count)

        plain = PAgent(FunctionModel(pydantic_model), tools=[PTool(refund, name="issue_refund")])
        gated = PAgent(
            FunctionModel(pydantic_model),
            tools=[PTool(refund, name="issue_refund", requires_approval=True)],
        )
        capability = EscbotCapability(
            guard, timeout=5, options={"confidence": 0.9}, report_cost=False
        )

        async def pydantic_plain() -> None:
            await plain.run("refund")

        async def pydantic_gated() -> None:
            result = await gated.run("refund", capabilities=[capability])
            assert result.output == "done", result.output

        samples["pydantic-ai, not gated"] = await measure(pydantic_plain, count)
        samples["pydantic-ai, gated"] = await measure(pydantic_gated, count)

        tool = function_tool(refund, name_override="issue_refund")
        approvals = EscbotApprovals(guard, timeout=5, options={"confidence": 0.9})
        plain_agent = Agent(name="plain", model=OpenAIModel(), tools=[tool])
        gated_agent = Agent(name="gated", model=OpenAIModel(), tools=[approvals.gate(tool)])

        async def openai_plain() -> None:
            await Runner.run(plain_agent, "refund")

        async def openai_gated() -> None:
            result = await approvals.run(gated_agent, "refund")
            assert result.final_output == "done", result.final_output

        samples["openai-agents, not gated"] = await measure(openai_plain, count)
        samples["openai-agents, gated"] = await measure(openai_gated, count)
    return samples


def bench_langgraph(prefix: str, count: int) -> dict[str, list[float]]:
    def model(state: MessagesState) -> dict[str, Any]:
        if any(isinstance(m, ToolMessage) for m in state["messages"]):
            return {"messages": [AIMessage(content="done")]}
        call = {"name": "issue_refund", "args": ARGS, "id": f"c-{uuid.uuid4().hex[:12]}"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    def tools(state: MessagesState) -> dict[str, Any]:
        last = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
        return {
            "messages": [
                ToolMessage(content=refund(**c["args"]), tool_call_id=c["id"])
                for c in last.tool_calls
            ]
        }

    samples: dict[str, list[float]] = {}
    with TaskGuard("bench-sdk-lg", url=REDIS_URL, prefix=prefix, agent="bench") as guard:
        for label, names in (
            ("langgraph, not gated", set()),
            ("langgraph, gated", {"issue_refund"}),
        ):
            gate = ApprovalGate(guard, tools=names, timeout=5, options={"confidence": 0.9})
            graph = StateGraph(MessagesState)
            graph.add_node("model", gate.before_model(model))
            graph.add_node("approval", gate.node)
            graph.add_node("tools", tools)
            graph.add_edge(START, "model")
            graph.add_conditional_edges("model", gate.after_model, ["approval", END])
            graph.add_conditional_edges("approval", gate.after_approval, ["tools", "model"])
            graph.add_edge("tools", "model")
            app = graph.compile(checkpointer=InMemorySaver())

            async def run(gate: ApprovalGate = gate, app: Any = app) -> None:
                config = {"configurable": {"thread_id": uuid.uuid4().hex}}
                result = gate.invoke(app, {"messages": [HumanMessage("refund")]}, config)
                assert result["messages"][-1].content == "done"

            samples[label] = asyncio.run(measure(run, count))
    return samples


def bench_overhead(count: int) -> dict[str, Any]:
    set_tracing_disabled(True)
    with bot_with_auto_policy() as prefix:
        samples = asyncio.run(bench_async_adapters(prefix, count))
        samples.update(bench_langgraph(prefix, count))
    result: dict[str, Any] = {label: summary(values) for label, values in samples.items()}
    for label, values in samples.items():
        print(f"  {label:<29} {ms(values)}", flush=True)
    bare = result["request_approval (bare SDK)"]["median_ms"]
    for framework in ("pydantic-ai", "openai-agents", "langgraph"):
        gated = result[f"{framework}, gated"]
        plain = result[f"{framework}, not gated"]
        overhead = {
            "median_ms": gated["median_ms"] - plain["median_ms"],
            "p99_ms": gated["p99_ms"] - plain["p99_ms"],
            "ratio_over_bare_request_approval": (gated["median_ms"] - plain["median_ms"]) / bare,
        }
        result[f"{framework} overhead"] = overhead
        print(
            f"  {framework:<14} overhead per approved call: median {overhead['median_ms']:6.2f} ms"
            f"   p99 {overhead['p99_ms']:6.2f} ms   "
            f"{overhead['ratio_over_bare_request_approval']:.2f} x bare request_approval"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--installs", type=int, default=3)
    parser.add_argument("--imports", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    print(f"(a, b) install and import, fresh venvs, local wheelhouse ({args.installs} installs)")
    results: dict[str, Any] = {"install": bench_install(args.installs, args.imports)}
    print(f"(c) adapter overhead per tool call, auto policy decision ({args.calls} runs)")
    results["overhead"] = bench_overhead(args.calls)
    print(f"saved {save('sdk', results)}")


if __name__ == "__main__":
    main()
