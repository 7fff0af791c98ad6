"""An MCP client that obeys the bot through `escbot-agent mcp` (escbot-agent[mcp]): what an
agent framework that speaks MCP does, without the SDK.

    python examples/mcp_client.py --task-id mcp-1

It starts `escbot-agent mcp --task-id mcp-1` on stdio, lists its tools, checks control,
asks for approval of a 740 EUR refund (decide it in Slack or with `escbot decide
<escalation id> approve --by alice`), says what it did and reports a cost signal. It reads
`REDIS_URL` and `REDIS_KEY_PREFIX` like the bot, and hands them to the server (an MCP
client passes a server only a few safe variables unless told).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

EXIT_KILLED = 3
SETTINGS = ("REDIS_URL", "REDIS_KEY_PREFIX")


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if isinstance(result.structured_content, dict):
        return result.structured_content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


async def run(options: argparse.Namespace) -> int:
    server = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "escbot_agent.cli",
            "mcp",
            "--task-id",
            options.task_id,
            "--agent",
            options.agent,
        ],
        env={name: os.environ[name] for name in SETTINGS if name in os.environ},
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        tools = [tool.name for tool in (await client.list_tools()).tools]
        print(f"tools: {', '.join(sorted(tools))}", flush=True)
        control = await call(client, "check_control")
        if control["state"] == "killed":
            print(f"killed by {control['by']}: {control['reason']}", flush=True)
            return EXIT_KILLED
        eid = f"{options.task_id}.refund-{uuid.uuid4().hex[:6]}"
        print(f"waiting for approval: escalation {eid}", flush=True)
        answer = await call(
            client,
            "request_approval",
            action="issue_refund",
            reason="refund above the 500 EUR limit",
            args={"amount": 740, "currency": "EUR"},
            timeout=options.timeout,
            escalation_id=eid,
        )
        if answer["state"] == "killed":
            print(f"killed by {answer['by']}: {answer['reason']}", flush=True)
            return EXIT_KILLED
        if answer["approved"]:
            text = f"refunded {answer['args']['amount']} EUR"
            await call(client, "say", text=text, escalation_id=eid)
            await call(client, "signal", name="cost", value=0.02, detail="one refund")
        else:
            text = f"not refunded: {answer['decision']} by {answer['by']}"
        print(f"done: {text}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--agent", default="mcp-demo")
    parser.add_argument("--timeout", type=float, default=300.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
