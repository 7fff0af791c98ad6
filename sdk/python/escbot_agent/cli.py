"""`escbot-agent`: the SDK's command line. `escbot-agent mcp --task-id T` serves MCP on stdio."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="escbot-agent", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    mcp = commands.add_parser(
        "mcp", help="an MCP server on stdio for one task (needs escbot-agent[mcp])"
    )
    mcp.add_argument("--task-id", default=os.environ.get("ESCBOT_TASK_ID"))
    mcp.add_argument("--agent", default=os.environ.get("ESCBOT_AGENT", "agent"))
    mcp.add_argument("--task-type", default=os.environ.get("ESCBOT_TASK_TYPE"))
    mcp.add_argument("--redis-url", default=None, help="default: REDIS_URL")
    mcp.add_argument("--prefix", default=None, help="default: REDIS_KEY_PREFIX")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if not options.task_id:
        print("escbot-agent mcp: give --task-id (or ESCBOT_TASK_ID)", file=sys.stderr)
        return 2
    try:
        from escbot_agent.mcp_server import serve_stdio
    except ImportError as exc:
        print(
            f"escbot-agent mcp needs the mcp extra: pip install 'escbot-agent[mcp]' ({exc})",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(
            serve_stdio(
                options.task_id,
                agent=options.agent,
                task_type=options.task_type,
                url=options.redis_url,
                prefix=options.prefix,
            )
        )
    except ValueError as exc:  # an invalid task id, agent or setting: said in one line
        print(f"escbot-agent mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
