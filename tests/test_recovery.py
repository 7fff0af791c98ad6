"""Recovery (CONTRACTS §11) through the real service, Redis and both databases: restart
and abandon, and the `outcomes` stream written once for every way the bot ends a task,
also when Redis was down and reconcile replays it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
import yaml

from bot.control import ControlPlane, Effect, connect
from bot.core import EscalationService
from bot.db import audit
from bot.db.models import PendingEffectRow
from bot.db.store import Store
from bot.errors import (
    ControlPlaneUnavailable,
    InvalidInput,
    NotAllowed,
    NothingChanged,
    UnknownTask,
)
from bot.keys import KeyNames
from bot.policy import parse_policy
from tests.conftest import OPERATOR, POLICY_YAML, STRANGER, StaticDirectory
from tests.support.cli import Cli
from tests.support.factories import escalation
from tests.support.redis_server import PrivateRedis
from tests.test_sweep import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: Clock
) -> EscalationService:
    return make_service(control, clock=clock)


def rows(store: Store, **match: Any) -> list[dict[str, Any]]:
    with store.reading() as session:
        found = [record.as_json() for record in audit.iter_records(session)]
    return [row for row in found if all(row.get(k) == v for k, v in match.items())]


def outcomes(client: redis.Redis, prefix: str) -> list[dict[str, str]]:
    return [dict(fields) for _id, fields in client.xrange(f"{prefix}outcomes")]


def inbox(client: redis.Redis, prefix: str, task_id: str) -> list[dict[str, str]]:
    return [dict(fields) for _id, fields in client.xrange(f"{prefix}inbox:{task_id}")]


# Restart


def test_restart_puts_the_instruction_in_the_inbox_then_lifts_the_pause(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    service.pause("refund-r1", OPERATOR, "looks wrong")
    result = service.restart("refund-r1", OPERATOR, "  refund 500, not 740  ")
    assert result.action == "restart" and "refund-r1" in result.message
    assert rdb.exists(f"{prefix}pause:refund-r1") == 0
    [entry] = inbox(rdb, prefix, "refund-r1")
    assert entry["kind"] == "restart" and entry["text"] == "refund 500, not 740"
    assert entry["author"] == OPERATOR and entry["source"] == "operator"
    [row] = rows(store, action="restart")
    assert row["actor"] == OPERATOR and row["task_id"] == "refund-r1"
    assert row["reason"] == "refund 500, not 740"
    assert service.status("refund-r1").paused is None
    assert outcomes(rdb, prefix) == []  # a restart does not end the task


def test_restart_refuses_what_it_cannot_restart_and_changes_nothing(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    with pytest.raises(UnknownTask, match="never seen"):
        service.restart("ghost-1", OPERATOR, "do it again")
    service.pause("refund-r2", OPERATOR)
    service.resume("refund-r2", OPERATOR)
    with pytest.raises(NothingChanged, match="not paused"):
        service.restart("refund-r2", OPERATOR, "again")
    service.kill("refund-r3", OPERATOR)
    with pytest.raises(NothingChanged, match="is killed"):
        service.restart("refund-r3", OPERATOR, "again")
    with pytest.raises(InvalidInput, match="required"):
        service.restart("refund-r2", OPERATOR, "   ")
    assert rows(store, action="restart") == []
    assert not rdb.exists(f"{prefix}inbox:ghost-1", f"{prefix}inbox:refund-r2")


def test_a_stranger_may_not_restart_or_abandon_and_is_audited(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    service.pause("refund-r4", OPERATOR)
    with pytest.raises(NotAllowed):
        service.restart("refund-r4", STRANGER, "do it my way")
    with pytest.raises(NotAllowed):
        service.abandon("refund-r4", STRANGER, "never mind")
    denied = rows(store, action="denied", actor=STRANGER)
    assert [row["detail"]["attempted"] for row in denied] == ["restart", "abandon"]
    assert all(row["task_id"] == "refund-r4" for row in denied)
    assert rdb.exists(f"{prefix}pause:refund-r4") == 1
    assert rdb.exists(f"{prefix}kill:refund-r4", f"{prefix}inbox:refund-r4") == 0
    assert outcomes(rdb, prefix) == []


# Abandon


def test_abandon_kills_a_paused_task_and_tells_its_end_user_once(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    record, _ = service.open_escalation(escalation(task_id="refund-a1"))
    service.pause("refund-a1", OPERATOR, "wrong customer")
    result = service.abandon("refund-a1", OPERATOR, "We could not verify your order.")
    assert result.action == "abandon"
    kill = json.loads(rdb.get(f"{prefix}kill:refund-a1") or "{}")
    assert kill["reason"] == "abandoned: We could not verify your order."
    assert kill["by"] == OPERATOR
    assert rdb.exists(f"{prefix}pause:refund-a1") == 0
    [entry] = outcomes(rdb, prefix)
    assert entry == {
        "task_id": "refund-a1",
        "agent": "billing-agent",
        "status": "abandoned",
        "notice": "We could not verify your order.",
        "by": OPERATOR,
        "escalation_id": "",
        "at": entry["at"],
        "source": "bot",
        "task_type": record.task_type or "",
    }
    [row] = rows(store, action="abandon")
    assert row["reason"] == "abandoned: We could not verify your order."
    with pytest.raises(NothingChanged, match="already abandoned"):
        service.abandon("refund-a1", OPERATOR)
    assert len(outcomes(rdb, prefix)) == 1


def test_abandon_without_an_explanation_and_of_a_killed_task(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    service.kill("refund-a2", OPERATOR, "runaway")
    service.abandon("refund-a2", OPERATOR)
    kill = json.loads(rdb.get(f"{prefix}kill:refund-a2") or "{}")
    assert kill["reason"] == "abandoned: no explanation given"
    [entry] = outcomes(rdb, prefix)
    assert entry["status"] == "abandoned" and entry["agent"] == "unknown"
    assert entry["notice"] == "Your request could not be completed and has been closed."


def test_abandon_of_a_task_never_seen_is_refused(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    with pytest.raises(UnknownTask, match="never seen"):
        service.abandon("ghost-2", OPERATOR, "bye")
    assert rows(store, action="abandon") == [] and rows(store, action="kill") == []
    assert rdb.exists(f"{prefix}kill:ghost-2") == 0 and outcomes(rdb, prefix) == []


def test_abandon_of_a_task_only_the_fleet_has_seen(
    service: EscalationService, rdb: redis.Redis, prefix: str, clock: Clock
) -> None:
    import time

    rdb.zadd(f"{prefix}tasks", {"fleet-1": time.time()})
    rdb.hset(f"{prefix}task:fleet-1", mapping={"agent": "mail-agent", "task_type": "reply"})
    service.abandon("fleet-1", OPERATOR, "Sorry.")
    [entry] = outcomes(rdb, prefix)
    assert entry["agent"] == "mail-agent" and entry["task_type"] == "reply"


# Every other kind of end


def test_terminate_writes_one_terminated_outcome(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    record, _ = service.open_escalation(escalation())
    service.decide(record.id, OPERATOR, "terminate")
    [entry] = outcomes(rdb, prefix)
    assert entry["status"] == "terminated" and entry["task_id"] == record.task_id
    assert entry["escalation_id"] == record.id and entry["by"] == OPERATOR
    assert entry["source"] == "bot" and entry["agent"] == "billing-agent"
    assert entry["notice"]


def test_a_kill_reject_redirect_and_approve_write_no_outcome(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    for verdict, extra in (
        ("approve", {}),
        ("reject", {"comment": "no"}),
        ("redirect", {"instruction": "ask first"}),
    ):
        record, _ = service.open_escalation(escalation())
        service.decide(record.id, OPERATOR, verdict, **extra)  # type: ignore[arg-type]
    service.kill("refund-k1", OPERATOR)  # a kill can be revived: not an end
    assert outcomes(rdb, prefix) == []


def test_an_expiry_writes_one_expired_outcome(
    timed: EscalationService, rdb: redis.Redis, prefix: str, clock: Clock
) -> None:
    record, _ = timed.open_escalation(escalation())
    for _ in range(3):  # triage, review, incident: then it expires
        clock.advance(minutes=31)
        timed.escalate_due()
    assert timed.get_escalation(record.id).state == "expired"
    [entry] = outcomes(rdb, prefix)
    assert entry["status"] == "expired" and entry["by"] == "policy"
    assert entry["escalation_id"] == record.id
    clock.advance(minutes=31)
    timed.escalate_due()
    assert len(outcomes(rdb, prefix)) == 1


def test_a_policy_deny_writes_one_rejected_outcome(
    store: Store, control: ControlPlane, directory: StaticDirectory, rdb: redis.Redis, prefix: str
) -> None:
    text = yaml.safe_dump(
        yaml.safe_load(POLICY_YAML) | {"actions": {"close_account": {"decide": "deny"}}}
    )
    ruled = EscalationService(store, control, parse_policy(text.encode()), directory=directory)
    denied = escalation(action={"name": "close_account", "args": {}})
    record, _ = ruled.open_escalation(denied)
    assert record.state == "rejected"
    ruled.open_escalation(denied)  # the agent asks again: the same decision, no new entry
    [entry] = outcomes(rdb, prefix)
    assert entry["status"] == "rejected" and entry["by"] == "policy"
    assert entry["escalation_id"] == record.id and entry["task_id"] == record.task_id


def test_the_outcomes_reader_leaves_the_bots_own_entries_alone(
    service: EscalationService, rdb: redis.Redis, prefix: str, redis_url: str
) -> None:
    from bot.outcomes import OutcomesReader

    service.kill("refund-o1", OPERATOR)
    service.abandon("refund-o1", OPERATOR)
    [entry] = outcomes(rdb, prefix)
    reader = OutcomesReader(rdb, KeyNames(prefix), service)
    assert reader.handle("1-0", entry, 1) is True  # acknowledged, nothing sampled
    assert service.overview().open_escalations == ()


# After a crash


@pytest.fixture
def private_control(private_redis: PrivateRedis) -> Iterator[ControlPlane]:
    client = connect(private_redis.url, timeout=0.5)
    yield ControlPlane(client, KeyNames("p:"))
    client.close()


def test_outcomes_kept_while_redis_was_down_are_written_once_by_reconcile(
    private_redis: PrivateRedis,
    private_control: ControlPlane,
    store: Store,
    directory: StaticDirectory,
    clock: Clock,
) -> None:
    """Every kind of end while Redis is down: each kept, each written once by reconcile,
    none again when the same writes are replayed a second time."""
    text = yaml.safe_dump(
        yaml.safe_load(POLICY_YAML) | {"actions": {"close_account": {"decide": "deny"}}}
    )
    policy = parse_policy(text.encode())
    service = EscalationService(store, private_control, policy, directory=directory, clock=clock)
    service.pause("refund-c1", OPERATOR)
    terminated, _ = service.open_escalation(escalation(task_id="refund-c2"))
    expiring, _ = service.open_escalation(escalation(task_id="refund-c3"))
    for _ in range(2):  # up to the last tier
        clock.advance(minutes=31)
        service.escalate_due()
    private_redis.stop()
    with pytest.raises(ControlPlaneUnavailable, match="outcomes will get the entry"):
        service.abandon("refund-c1", OPERATOR, "Sorry, we stopped.")
    with pytest.raises(ControlPlaneUnavailable):
        service.decide(terminated.id, OPERATOR, "terminate")
    clock.advance(minutes=31)
    assert service.escalate_due().expired == (expiring.id,)  # kept: Redis is down
    denied, _ = service.open_escalation(
        escalation(task_id="refund-c4", action={"name": "close_account", "args": {}})
    )
    assert denied.state == "rejected"
    with store.reading() as session:
        rows = session.scalars(
            sa.select(PendingEffectRow).where(PendingEffectRow.kind == "outcome")
        ).all()
        kept = [(row.target, row.value) for row in rows]
    assert len(kept) == 4

    private_redis.start()
    service.reconcile()
    service.reconcile()
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        written = outcomes(client, "p:")
        assert sorted(e["status"] for e in written) == [
            "abandoned",
            "expired",
            "rejected",
            "terminated",
        ]
        # The same entries replayed again (reconcile crashed before its commit, or Redis
        # took the write but its answer was lost): nothing is added.
        replay = [Effect("outcome", target, "append", value) for target, value in kept]
        private_control.apply(replay)
        assert len(outcomes(client, "p:")) == 4
    finally:
        client.close()


# The CLI twins


def test_escbot_restart_and_abandon(
    tmp_path: Path, redis_url: str, prefix: str, database_url: str, rdb: redis.Redis
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    cli = Cli(
        tmp_path,
        {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": database_url},
    )
    ghost = cli("restart", "ghost-3", "go on", "--by", "alice")
    assert ghost.code == 1 and "never seen" in ghost.err
    assert cli("pause", "refund-x1", "--by", "alice").code == 0
    restarted = cli("restart", "refund-x1", "refund 500, not 740", "--by", "alice")
    assert restarted.code == 0, restarted.err
    assert "Restarted refund-x1" in restarted.out
    [entry] = inbox(rdb, prefix, "refund-x1")
    assert entry["kind"] == "restart" and entry["author"] == "cli:alice"
    abandoned = cli("abandon", "refund-x1", "--explanation", "Sorry.", "--by", "alice")
    assert abandoned.code == 0, abandoned.err
    again = cli("abandon", "refund-x1", "--by", "bob")
    assert again.code == 1 and "already abandoned by cli:alice" in again.err
    [outcome] = outcomes(rdb, prefix)
    assert outcome["status"] == "abandoned" and outcome["by"] == "cli:alice"
    assert outcome["notice"] == "Sorry."
