"""`escbot policy check` and `escbot policy explain`, run as processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.test_policy_model import EXAMPLE


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    shutil.copy(EXAMPLE, tmp_path / "policy.yaml")
    return Cli(tmp_path, {})


def test_check_prints_the_version_or_the_one_line_reason(cli: Cli, tmp_path: Path) -> None:
    ran = cli("policy", "check")
    assert ran.code == 0 and "valid, version sha256:" in ran.out
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("ladder: payments", "ladder: paymints", 1))
    refused = cli("policy", "check", str(bad))
    assert refused.code == 2
    assert "routes[0].ladder: unknown ladder 'paymints'" in refused.err
    assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err
    missing = cli("policy", "check", str(tmp_path / "nope.yaml"))
    assert missing.code == 2 and "does not exist" in missing.err


def explain(cli: Cli, *args: str) -> dict[str, str]:
    ran = cli("policy", "explain", *args)
    assert ran.code == 0, ran.err
    return dict(line.split(": ", 1) for line in ran.out.splitlines())


def test_explain_a_big_refund(cli: Cli) -> None:
    said = explain(
        cli,
        "--task-type", "refund", "--agent", "billing-agent", "--severity", "high",
        "--action", "issue_refund", "--args", '{"amount": 740}', "--confidence", "0.9",
    )  # fmt: skip
    assert said["route"] == "big-refunds"
    assert said["ladder"] == "payments (pay-triage, pay-oncall)"
    assert said["deadlines"].startswith("pay-triage 3m, pay-oncall 3m (pages)")
    assert said["quorum"] == "1 approval(s)"
    assert said["decision"].startswith("a person decides")
    assert "`args.amount > 500` is true" in said["why"]


def test_explain_a_small_refund_decided_alone_and_sampled(cli: Cli) -> None:
    said = explain(
        cli, "--task-type", "refund", "--action", "issue_refund", "--args", '{"amount": 70}',
        "--confidence", "0.95",
    )  # fmt: skip
    assert said["decision"].startswith("approved by the policy")
    assert said["review"].startswith("5% of these")


def test_explain_low_confidence_and_a_critical_deploy(cli: Cli) -> None:
    unsure = explain(
        cli, "--task-type", "refund", "--action", "issue_refund", "--args", '{"amount": 70}',
        "--confidence", "0.3",
    )  # fmt: skip
    assert unsure["the card says"] == "Confidence 0.30 is below the policy's 0.80"
    deploy = explain(
        cli, "--task-type", "deploy", "--severity", "critical", "--action", "deploy",
        "--args", '{"environment": "production"}',
    )  # fmt: skip
    assert deploy["starts at"] == "platform-oncall (C0PLATON)"
    assert deploy["quorum"] == "2 approval(s)"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--args", "{not json"), "--args: not JSON"),
        (("--args", "[1, 2]"), "--args: must be a JSON object"),
        (("--confidence", "1.5"), "--confidence: must be between 0 and 1"),
        (("--tier", "nowhere"), "--tier: 'nowhere' is not a tier"),
    ],
)
def test_explain_refuses_bad_input_in_one_line(
    cli: Cli, args: tuple[str, ...], needle: str
) -> None:
    ran = cli("policy", "explain", "--action", "issue_refund", *args)
    assert ran.code == 2 and needle in ran.err, ran.err
    assert len(ran.err.strip().splitlines()) == 1
