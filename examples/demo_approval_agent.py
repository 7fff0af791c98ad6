"""A demo agent that asks before it acts and lets the policy decide who answers: replies
it is sure of (confidence 0.8 and over, in the sandbox's sample policy) go out alone and
come back as review cards; replies it is unsure of go to a person, and the card says
why. It answers messages in its cards' threads.

    python examples/demo_approval_agent.py --task-id demo-3

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
TICKETS = (
    ("T-1041", "Where is my parcel?", "It left our warehouse on Monday.", 0.55),
    ("T-1042", "How do I reset my password?", "Use the link on the sign-in page.", 0.93),
    ("T-1043", "Can I get a discount?", "I can offer 15% on your next order.", 0.41),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-id", required=True, help="the task this agent works on")
    parser.add_argument("--agent", default="support-agent", help="the agent's name")
    parser.add_argument("--rounds", type=int, default=1000, help="tickets to answer")
    parser.add_argument("--pause-seconds", type=float, default=3.0, help="between tickets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  [guard] %(message)s", stream=sys.stdout)
    try:
        with TaskGuard(args.task_id, agent=args.agent, task_type="support-reply") as guard:
            for round_ in range(args.rounds):
                ticket, question, answer, confidence = TICKETS[round_ % len(TICKETS)]
                for message in guard.checkpoint(step=f"answering {ticket}"):
                    guard.say(f"Thanks, noted: “{message.text}”", message.escalation_id)
                outcome = guard.request_approval(
                    "send_reply",
                    {"ticket": ticket, "text": answer},
                    reason=f"reply to {ticket}: “{question}”",
                    timeout=3600,
                    severity="medium",
                    confidence=confidence,
                    context={"source": question, "policy_rule": "support.replies"},
                )
                done = "sent" if outcome.approved else "not sent"
                print(f"{ticket}: {outcome.decision} by {outcome.by}: {done}", flush=True)
                if outcome.approved and outcome.by != "policy":
                    guard.say(f"Sent the reply to {ticket}.", outcome.escalation_id)
                time.sleep(args.pause_seconds)
            guard.finish(notice="Every ticket is answered.")
    except TaskKilled as killed:
        print(f"killed by {killed.by}: {killed.reason}; stopping now", flush=True)
        return EXIT_KILLED
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
