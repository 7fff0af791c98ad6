"""A demo agent that spends fast: each step reports a `cost` signal, and the policy's
cost-spike trigger (the sandbox's sample policy: more than 5 over a minute) pauses it
and opens an escalation. Resumed, it goes on; it answers messages in its card's thread.

    python examples/demo_cost_agent.py --task-id demo-2

It reads `REDIS_URL` and `REDIS_KEY_PREFIX` like the bot. Exit codes: 0 finished,
3 killed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from escbot_agent import TaskGuard, TaskKilled

EXIT_KILLED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-id", required=True, help="the task this agent works on")
    parser.add_argument("--agent", default="crawler-agent", help="the agent's name")
    parser.add_argument("--steps", type=int, default=100_000, help="steps to run")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="length of a step")
    parser.add_argument("--cost", type=float, default=1.5, help="what each step costs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  [guard] %(message)s", stream=sys.stdout)
    try:
        with TaskGuard(args.task_id, agent=args.agent, task_type="research") as guard:
            for step in range(1, args.steps + 1):
                for message in guard.checkpoint(step=f"crawling page {step}"):
                    print(f"{message.kind} from {message.author}: {message.text}", flush=True)
                    guard.say(f"Understood: “{message.text}”", message.escalation_id)
                time.sleep(args.step_seconds)
                guard.signal("cost", args.cost, f"page {step}: a long model call")
            guard.finish(notice="The research is done.")
    except TaskKilled as killed:
        print(f"killed by {killed.by}: {killed.reason}; stopping now", flush=True)
        return EXIT_KILLED
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
