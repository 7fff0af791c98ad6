"""`escbot review`: a sampled review's verdict from a terminal, as the card's buttons give
it, run as a process against the real Redis and database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db.store import Store
from bot.policy import parse_policy
from tests.conftest import StaticDirectory
from tests.support.cli import Cli
from tests.test_review_verdicts import REVIEWED_POLICY


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """As for the other CLI tests: the service tests cover both databases."""
    return request.param


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, prefix: str, database_url: str) -> Cli:
    (tmp_path / "policy.yaml").write_text(REVIEWED_POLICY)
    return Cli(
        tmp_path,
        {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": database_url},
    )


@pytest.fixture
def service(store: Store, control: ControlPlane, directory: StaticDirectory) -> EscalationService:
    policy = parse_policy(REVIEWED_POLICY.encode())
    return EscalationService(store, control, policy, directory=directory)


def sampled(service: EscalationService) -> int:
    task_id = f"refund-{uuid.uuid4().hex[:6]}"
    assert service.task_finished(task_id, "billing-agent", task_type="refund", notice="Done.")
    return next(r.id for r in service.overview().reviews if r.subject_id == task_id)


def test_escbot_review_gives_a_verdict_once(
    cli: Cli, service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    first, second = sampled(service), sampled(service)
    listing = cli("list")
    assert f"{first}: finished" in listing.out and f"{second}: finished" in listing.out

    ran = cli("review", str(first), "looks-right", "--by", "alice")
    assert ran.code == 0 and f"Review {first}" in ran.out and "looks right" in ran.out
    again = cli("review", str(first), "flag", "--note", "no", "--by", "bob")
    assert again.code == 1 and "already given a verdict (looks right) by cli:alice" in again.err
    assert service.get_review(first).verdict_by == "cli:alice"

    no_note = cli("review", str(second), "flag", "--by", "alice")
    assert no_note.code == 1 and "what is wrong is required" in no_note.err
    flagged = cli(
        "review", str(second), "flag", "--note", "wrong date", "--pause", "agent", "--by", "alice"
    )
    assert flagged.code == 0 and "Paused every task of billing-agent" in flagged.out
    value = json.loads(rdb.get(f"{prefix}pause:agent:billing-agent") or "{}")
    assert value["by"] == "cli:alice"
    assert f"{first}: finished" not in cli("list").out  # no longer waiting


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["abc", "looks-right"], 1, "invalid review id 'abc'"),
        (["987654", "looks-right"], 1, "unknown review 987654"),
        (["1", "maybe"], 2, "invalid choice: 'maybe'"),
        (["1", "flag", "--note", "x", "--pause", "all"], 2, "invalid choice: 'all'"),
        (["1", "looks-right", "--pause", "task"], 1, "only a flag can pause"),
    ],
)
def test_a_malformed_review_command_changes_nothing(
    cli: Cli, service: EscalationService, args: list[str], code: int, says: str
) -> None:
    review_id = sampled(service)
    ran = cli("review", *args, "--by", "alice")
    assert ran.code == code and says in ran.err and "Traceback" not in ran.err
    assert service.get_review(review_id).verdict is None
