"""`escbot policy check [FILE]` and `escbot policy explain …`: the policy file, offline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.policy import Request, read_policy
from bot.policy.explain import explain
from bot.policy.fields import SEVERITIES


def add_policy_parser(sub: Any) -> None:
    policy = sub.add_parser("policy", help="check the policy file, or explain what it does")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a policy file and print its version")
    check.add_argument("file", nargs="?", type=Path, help="default: ESCBOT_POLICY")
    explain_cmd = actions.add_parser(
        "explain", help="the route, ladder, deadlines, quorum and decision for a request"
    )
    explain_cmd.add_argument("--policy", type=Path, help="default: ESCBOT_POLICY")
    explain_cmd.add_argument("--task-type", default=None)
    explain_cmd.add_argument("--agent", default="unknown")
    explain_cmd.add_argument("--severity", default="medium", choices=SEVERITIES)
    explain_cmd.add_argument(
        "--kind",
        default=None,
        choices=("approval", "exception", "review"),
        help="default: approval with --action, else exception",
    )
    explain_cmd.add_argument("--action", default=None, help="the proposed action's name")
    explain_cmd.add_argument("--args", default="{}", help="its arguments, a JSON object")
    explain_cmd.add_argument("--confidence", type=float, default=None)
    explain_cmd.add_argument("--tier", default=None, help="the starting tier the agent asks for")


def run_policy(args: argparse.Namespace, default_path: Path) -> int:
    if args.policy_command == "check":
        path = args.file or default_path
        policy, _content = read_policy(path)
        print(f"{path}: valid, version {policy.version}")
        return 0
    policy, _content = read_policy(args.policy or default_path)
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--args: not JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(arguments, dict):
        raise ConfigError("--args: must be a JSON object, e.g. '{\"amount\": 740}'")
    if args.confidence is not None and not 0 <= args.confidence <= 1:
        raise ConfigError("--confidence: must be between 0 and 1")
    request = Request(
        kind=args.kind or ("approval" if args.action else "exception"),
        severity=args.severity,
        task_type=args.task_type,
        agent=args.agent,
        action=args.action,
        args=arguments,
        confidence=args.confidence,
        tier=args.tier,
    )
    try:
        lines = explain(policy, request)
    except KeyError:
        raise ConfigError(f"--tier: {args.tier!r} is not a tier of the route's ladder") from None
    print("\n".join(lines))
    return 0
