"""A demo agent that obeys the escalation bot: a loop of steps, one approval, and every
override (kill, pause, redirect, restart, messages) honoured at the top of each step. It
shows in the fleet (`escbot list`) with its step, reports what each step cost (a `cost`
signal, for the bot's triggers) and tells the bot how the task ended (`guard.finish`:
completed, or failed).

    python examples/demo_agent.py --task-id demo-1

It reads `REDIS_URL` and `REDIS_KEY_PREFIX` like the bot. While it runs, try (with the
bot's settings in the environment, or `.env`):

    escbot pause demo-1 --reason "checking the ledger" --by alice   # it waits
    escbot resume demo-1 --by alice                                 # it goes on
    escbot pause demo-1 --by alice                                  # or, after a pause:
    escbot restart demo-1 "refund 500 EUR, not 740" --by alice      # it starts the step over
    escbot abandon demo-1 --explanation "We could not verify your order." --by alice
                                                       # it stops; the bot told the customer
    escbot kill demo-1 --reason "demo over" --by alice              # it stops (exit 3)
    escbot kill agent:demo-agent --reason "bad deploy" --by alice   # so does every demo

and decide its approval in Slack (Approve, Edit & approve, Reject, Redirect, Terminate,
Escalate; a pause's announcement offers Resume, Restart with changes and Abandon), or
from a shell with the escalation id it prints: `escbot decide <id> approve --by alice`,
`escbot decide <id> approve --args '{"amount": 500, "currency": "EUR"}' --by alice` (it
refunds what was approved; the refund's schema refuses more than 740), or
`escbot escalate <id> --by alice`. With `--approvals 2` two different people must approve.
Exit codes: 0 finished, 3 killed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from escbot_agent import ApprovalOutcome, TaskGuard, TaskKilled

from bot.ids import new_escalation_id

EXIT_KILLED = 3
EUR_PER_STEP = 0.02  # what a step's model call costs, in the unit of the `cost` signal
REFUND_SCHEMA = {  # what an approver's edit must satisfy
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 1, "maximum": 740},
        "currency": {"enum": ["EUR"]},
    },
    "required": ["amount", "currency"],
}
PLAN = (
    "read the customer's email",
    "look up the order",
    "check the refund policy",
    "draft the refund",
    "email the customer",
    "close the ticket",
)


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-id", required=True, help="the task this agent works on")
    parser.add_argument("--agent", default="demo-agent", help="the agent's name")
    parser.add_argument("--steps", type=int, default=10, help="steps to run (default 10)")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="length of a step")
    parser.add_argument("--approval-at", type=int, default=4, help="step that needs approval")
    parser.add_argument(
        "--approval-timeout", type=float, default=300, help="seconds to wait for a decision"
    )
    parser.add_argument(
        "--approvals", type=int, default=1, help="different people who must approve (default 1)"
    )
    parser.add_argument("--on-unreachable", choices=("pause", "raise", "continue"), default="pause")
    args = parser.parse_args(argv)
    # The guard reports what it sees (pauses, kills, outages) through logging.
    logging.basicConfig(level=logging.INFO, format="  [guard] %(message)s", stream=sys.stdout)
    try:
        with TaskGuard(
            args.task_id,
            agent=args.agent,
            task_type="refund",
            on_unreachable=args.on_unreachable,
        ) as guard:
            say(f"{args.agent} working on {args.task_id} (state: {guard.state})")
            try:
                refunded = run(guard, args)
            except Exception:
                guard.finish("failed", notice="We could not finish your refund; we will write.")
                raise
            notice = (
                f"Your refund of {refunded} EUR is on its way."
                if refunded
                else "Your request was reviewed; no refund was issued."
            )
            guard.finish(notice=notice)
    except TaskKilled as killed:
        scope = f" (every task of {killed.agent})" if killed.agent_wide else ""
        say(f"killed by {killed.by}{scope}: {killed.reason}; stopping now")
        if killed.reason.startswith("abandoned:"):
            say("abandoned: the bot has told the customer (outcomes)")
        return EXIT_KILLED
    except KeyboardInterrupt:
        return 130
    say("done")
    return 0


def run(guard: TaskGuard, args: argparse.Namespace) -> int:
    """The steps; returns the amount refunded."""
    amount = 740
    refunded = 0
    note = ""
    for step in range(1, args.steps + 1):
        action = PLAN[(step - 1) % len(PLAN)]
        for message in guard.checkpoint(step=action):  # raises TaskKilled; waits while paused
            if message.is_restart:  # released from a pause, with new instructions
                note = message.text
                say(f"restarted by {message.author}: {message.text}; this step starts over")
            elif message.is_redirect:
                note = message.text
                say(f"redirected by {message.author}: {message.text}")
            else:
                say(f"message from {message.author}: {message.text}")
                guard.say(f"Noted, I will keep it in mind: “{message.text}”", message.escalation_id)
        if step == args.approval_at:
            refunded = amount = approve_refund(guard, amount, args.approval_timeout, args.approvals)
        say(f"step {step}/{args.steps}: {action}" + (f" (following: {note})" if note else ""))
        time.sleep(args.step_seconds)
        guard.signal("cost", EUR_PER_STEP, f"step {step}: {action}")
    return refunded


def approve_refund(guard: TaskGuard, amount: int, timeout: float, approvals: int = 1) -> int:
    """Ask before refunding more than the limit. Returns the amount actually refunded:
    the approved arguments, which an approver may have edited."""
    escalation_id = new_escalation_id()
    say(f"asking for approval: refund {amount} EUR (escalation {escalation_id})")
    outcome: ApprovalOutcome = guard.request_approval(
        "issue_refund",
        {"amount": amount, "currency": "EUR"},
        reason=f"refund of {amount} EUR is above the 500 EUR limit",
        timeout=timeout,
        severity="high",
        confidence=0.62,
        context={"policy_rule": "refunds.limit", "source": "customer email"},
        escalation_id=escalation_id,
        approvals=approvals,
        schema=REFUND_SCHEMA,
    )
    comment = f" ({outcome.comment})" if outcome.comment else ""
    if outcome.approved:
        approved = int((outcome.args or {}).get("amount", amount))
        edited = " (as edited)" if outcome.edited else ""
        people = f" with {', '.join(outcome.approvals)}" if len(outcome.approvals) > 1 else ""
        say(f"approved by {outcome.by}{people}{comment}: refunding {approved} EUR{edited}")
        guard.say(f"refunded {approved} EUR", escalation_id)
        return approved
    if outcome.decision == "redirected":
        say(f"redirected by {outcome.by}: {outcome.instruction}")
        guard.say(f"following the instruction: {outcome.instruction}", escalation_id)
        return 0
    # rejected, expired (nobody decided in time: not a rejection, but no refund either),
    # or terminated (the task is killed too: the next checkpoint stops the loop)
    say(f"{outcome.decision} by {outcome.by}{comment}: no refund")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
