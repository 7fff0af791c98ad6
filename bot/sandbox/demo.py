"""What the sandbox starts with: its sample policy (three tiers, the page's people in
their roles, an approval rule, a confidence floor, a trigger), the people of the page,
and, with `--demo`, the demo agents of `examples/` as processes of their own."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError
from bot.policy import Policy
from bot.sandbox.workspace import Person

OPERATOR = Person("U0SANDOPS", "olivia", "operator")
ADMIN = Person("U0SANDADM", "ada", "admin")
STRANGER = Person("U0SANDSTR", "sam", "stranger")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SAMPLE_POLICY = f"""\
# The sandbox's policy: three tiers, each on its own channel, and the people of the page.
roles:
  operator: [{OPERATOR.user_id}]    # {OPERATOR.name}: decides, kills, pauses, redirects
  admin: [{ADMIN.user_id}]       # {ADMIN.name}: all that, and `kill all`
tiers:
  - name: triage
    channel: C0TRIAGE
    ack_timeout: 2m
  - name: review
    channel: C0REVIEW
    ack_timeout: 5m
  - name: incident
    channel: C0INCIDENT
    ack_timeout: 10m
    page: true                 # the sandbox has no PagerDuty: nothing is paged
on_final_timeout: reject
stages:
  refund: broad
  support-reply: broad
  research: broad
actions:
  issue_refund:                # refunds above 500 need a person
    decide: approve
    when: "args.amount > 500"
    otherwise: auto
  send_reply:                  # replies go out alone, unless the agent is unsure
    decide: auto
    min_confidence: 0.8
    review_sample: 1.0         # and each one it sends alone is posted for review
triggers:
  - name: cost-spike           # an agent burning money is paused and escalated
    signal: cost
    sum_over: 1m
    above: 5
    then: [pause, escalate]
    severity: high
"""


@dataclass(frozen=True)
class DemoAgent:
    task_id: str
    script: str
    args: tuple[str, ...] = ()


DEMO_AGENTS = (
    # A refund above the limit: an approval card; it answers messages in the thread.
    DemoAgent(
        "demo-1",
        "demo_agent.py",
        ("--steps", "100000", "--step-seconds", "2", "--approval-at", "3"),
    ),
    # Spends fast: the cost-spike trigger pauses it and opens an exception card.
    DemoAgent("demo-2", "demo_cost_agent.py"),
    # Replies it is unsure of go to a person (the card says why); sure ones go out alone
    # and come back as review cards.
    DemoAgent("demo-3", "demo_approval_agent.py"),
)


def people_of(policy: Policy) -> list[Person]:
    """The page's people: the sample's, or the first operator and admin a given policy
    names (user ids only: a user group is nobody in particular)."""
    operator = next((u for u in policy.roles.operator if u.startswith(("U", "W"))), None)
    admin = next((u for u in policy.roles.admin if u.startswith(("U", "W"))), None)
    if operator in (None, OPERATOR.user_id) and admin in (None, ADMIN.user_id):
        return [OPERATOR, ADMIN, STRANGER]
    return [
        Person(operator, "operator", "operator") if operator else OPERATOR,
        Person(admin, "admin", "admin") if admin else ADMIN,
        STRANGER,
    ]


def channels_of(policy: Policy) -> dict[str, str]:
    """Every tier's channel, in ladder order, named after its (first) tier."""
    channels: dict[str, str] = {}
    for ladder in policy.all_ladders().values():
        for tier in ladder:
            channels.setdefault(tier.channel, tier.name)
    return channels


def start_agents(env: dict[str, str], folder: Path) -> list[subprocess.Popen[bytes]]:
    missing = [a.script for a in DEMO_AGENTS if not (EXAMPLES / a.script).is_file()]
    if missing:
        raise ConfigError(
            f"--demo: the demo agents ({', '.join(missing)}) are in examples/ of the source "
            "tree; run the sandbox from a checkout"
        )
    started = []
    for agent in DEMO_AGENTS:
        log = (folder / f"{agent.task_id}.log").open("wb")
        command = [sys.executable, str(EXAMPLES / agent.script), "--task-id", agent.task_id]
        started.append(
            subprocess.Popen([*command, *agent.args], env=env, stdout=log, stderr=subprocess.STDOUT)
        )
        log.close()
    return started


def _end_with_parent() -> None:
    """Linux: the agent is sent SIGTERM if the sandbox dies without stopping it."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_agents(agents: list[subprocess.Popen[bytes]]) -> None:
    for agent in agents:
        if agent.poll() is None:
            agent.terminate()
    for agent in agents:
        try:
            agent.wait(timeout=5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(timeout=5)
