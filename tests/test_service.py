"""The domain service against real Redis and both databases."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from bot.control import ControlPlane
from bot.core import EscalationService, ServiceEvent
from bot.db import audit
from bot.db.models import ControlRow, EscalationRow
from bot.db.store import Store
from bot.errors import (
    AlreadyDecided,
    InvalidId,
    InvalidInput,
    NotAllowed,
    NothingChanged,
    UnknownEscalation,
    UnknownTask,
)
from tests.conftest import ADMIN, ADMIN2, GROUP_MEMBER, OPERATOR, STRANGER
from tests.support.factories import escalation


def audit_rows(store: Store) -> list[dict[str, Any]]:
    with store.transaction() as session:
        return [record.as_json() for record in audit.iter_records(session)]


def prefixed_keys(rdb: redis.Redis, prefix: str) -> set[str]:
    return {key.removeprefix(prefix) for key in rdb.scan_iter(match=f"{prefix}*")}


def test_the_same_escalation_id_twice_is_one_escalation(
    service: EscalationService, store: Store
) -> None:
    esc = escalation()
    first, created = service.open_escalation(esc)
    again, created_again = service.open_escalation(esc.model_copy(update={"reason": "changed"}))
    assert created and not created_again
    assert again.id == first.id and again.reason == first.reason
    with store.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(EscalationRow)) == 1
    assert [card.channel for card in first.cards] == ["C0TRIAGE"]
    assert first.next_action_at is not None and first.state == "open"


def test_an_escalation_may_start_at_a_named_tier_and_not_an_unknown_one(
    service: EscalationService,
) -> None:
    view, _ = service.open_escalation(escalation(tier="review"))
    assert view.tier == "review" and view.cards[0].channel == "C0REVIEW"
    with pytest.raises(InvalidInput, match="unknown tier 'nope'"):
        service.open_escalation(escalation(tier="nope"))


@pytest.mark.parametrize(
    ("verdict", "extra", "outcome"),
    [
        ("approve", {}, "approved"),
        ("reject", {"comment": "too large; offer 500"}, "rejected"),
        ("redirect", {"instruction": "refund 500 and open a ticket"}, "redirected"),
        ("terminate", {}, "terminated"),
    ],
)
def test_each_decision_is_recorded_and_relayed(
    service: EscalationService,
    store: Store,
    rdb: redis.Redis,
    prefix: str,
    verdict: str,
    extra: dict[str, str],
    outcome: str,
) -> None:
    view, _ = service.open_escalation(escalation())
    result = service.decide(view.id, OPERATOR, verdict, **extra)  # type: ignore[arg-type]
    assert result.escalation is not None and result.escalation.state == outcome
    assert result.escalation.decided_by == OPERATOR
    decision = json.loads(rdb.get(f"{prefix}decision:{view.id}") or "{}")
    assert decision["decision"] == outcome and decision["by"] == OPERATOR
    assert decision["comment"] == extra.get("comment")
    assert decision["instruction"] == extra.get("instruction")
    assert rdb.ttl(f"{prefix}decision:{view.id}") > 0
    rows = audit_rows(store)
    assert rows[-1]["action"] == verdict and rows[-1]["escalation_id"] == view.id
    assert rows[-1]["state"] == {"step": 3}  # the agent's state as given
    killed = rdb.get(f"{prefix}kill:{view.task_id}")
    if verdict == "terminate":
        assert json.loads(killed or "{}")["escalation_id"] == view.id
    else:
        assert killed is None
    inbox = rdb.xrange(f"{prefix}inbox:{view.task_id}")
    if verdict == "redirect":
        assert inbox[0][1]["kind"] == "redirect"
        assert inbox[0][1]["escalation_id"] == view.id
    else:
        assert inbox == []


def test_redirect_needs_an_instruction(service: EscalationService) -> None:
    view, _ = service.open_escalation(escalation())
    with pytest.raises(InvalidInput, match="instruction is required"):
        service.decide(view.id, OPERATOR, "redirect", instruction="  ")
    assert service.get_escalation(view.id).state == "open"


def test_exactly_one_of_twenty_concurrent_decisions_wins(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation())
    verdicts = ["approve", "reject", "terminate", "redirect"]
    barrier = threading.Barrier(20)
    winners: list[tuple[str, str]] = []
    losers: list[AlreadyDecided] = []
    others: list[BaseException] = []
    lock = threading.Lock()

    def decide(i: int) -> None:
        verdict = verdicts[i % 4]
        actor = OPERATOR if i % 2 else ADMIN
        barrier.wait()
        try:
            service.decide(view.id, actor, verdict, instruction="go", comment=f"c{i}")  # type: ignore[arg-type]
            with lock:
                winners.append((verdict, actor))
        except AlreadyDecided as exc:
            with lock:
                losers.append(exc)
        except BaseException as exc:  # pragma: no cover - reported below
            with lock:
                others.append(exc)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert others == []
    assert len(winners) == 1 and len(losers) == 19
    verdict, actor = winners[0]
    final = service.get_escalation(view.id)
    assert final.decided_by == actor
    assert all(loser.by == actor and loser.decision == final.state for loser in losers)
    decisions = [row for row in audit_rows(store) if row["escalation_id"] == view.id]
    assert [row["action"] for row in decisions] == [verdict]
    assert json.loads(rdb.get(f"{prefix}decision:{view.id}") or "{}")["by"] == actor
    with store.transaction() as session:
        assert audit.verify(session).ok


def test_a_second_decision_changes_nothing_and_names_the_first(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation())
    service.decide(view.id, OPERATOR, "approve")
    before = rdb.get(f"{prefix}decision:{view.id}")
    with pytest.raises(AlreadyDecided, match=f"already approved by {OPERATOR}"):
        service.decide(view.id, ADMIN, "reject", comment="no")
    assert rdb.get(f"{prefix}decision:{view.id}") == before


def test_acknowledge_stops_the_clock_and_is_once(service: EscalationService) -> None:
    view, _ = service.open_escalation(escalation())
    result = service.acknowledge(view.id, GROUP_MEMBER)
    assert result.escalation is not None
    assert result.escalation.state == "acknowledged"
    assert result.escalation.acknowledged_by == GROUP_MEMBER
    assert result.escalation.next_action_at is None
    with pytest.raises(NothingChanged, match="already acknowledged"):
        service.acknowledge(view.id, OPERATOR)
    service.decide(view.id, OPERATOR, "approve")
    with pytest.raises(AlreadyDecided):
        service.acknowledge(view.id, OPERATOR)


def test_unknown_escalation(service: EscalationService) -> None:
    with pytest.raises(UnknownEscalation):
        service.decide("no-such-escalation", OPERATOR, "approve")


def test_a_denied_action_writes_a_denied_row_and_no_key(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation())
    attempts: list[Callable[[], object]] = [
        lambda: service.kill("refund-1", STRANGER, "mine"),
        lambda: service.kill_all(OPERATOR, "not an admin"),
        lambda: service.pause("refund-1", STRANGER),
        lambda: service.redirect("refund-1", STRANGER, "do x"),
        lambda: service.relay_message("refund-1", STRANGER, "hello"),
        lambda: service.decide(view.id, STRANGER, "approve"),
        lambda: service.acknowledge(view.id, STRANGER),
        lambda: service.revive_all(GROUP_MEMBER),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowed, match="not allowed"):
            attempt()
    rows = audit_rows(store)
    assert [row["action"] for row in rows] == ["denied"] * len(attempts)
    assert rows[5]["escalation_id"] == view.id and rows[5]["task_id"] == view.task_id
    assert "operator role" in rows[0]["reason"] and "admin role" in rows[1]["reason"]
    assert prefixed_keys(rdb, prefix) == set()
    assert service.get_escalation(view.id).state == "open"


BAD_IDS = ["*", "a b", "a\nb", "x" * 200, "all"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_task_ids_are_refused_before_anything_is_written(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str, bad: str
) -> None:
    for attempt in (
        lambda: service.kill(bad, OPERATOR, "x"),
        lambda: service.revive(bad, OPERATOR),
        lambda: service.pause(bad, OPERATOR),
        lambda: service.resume(bad, OPERATOR),
        lambda: service.redirect(bad, OPERATOR, "x"),
        lambda: service.relay_message(bad, OPERATOR, "x"),
        lambda: service.status(bad),
        lambda: service.kill(bad, STRANGER, "x"),  # refused as invalid, not even as denied
    ):
        with pytest.raises(InvalidId):
            attempt()
    assert audit_rows(store) == []
    assert prefixed_keys(rdb, prefix) == set()


def test_kill_pause_and_their_lifting(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    events: list[ServiceEvent] = []
    service.listeners.append(events.append)
    pubsub = rdb.pubsub()
    pubsub.subscribe(f"{prefix}control")
    pubsub.get_message(timeout=1)

    service.kill("refund-1", OPERATOR, "runaway loop")
    value = json.loads(rdb.get(f"{prefix}kill:refund-1") or "{}")
    assert value == {
        "reason": "runaway loop",
        "by": OPERATOR,
        "at": value["at"],
        "escalation_id": None,
    }
    assert value["at"].endswith("Z")
    message = pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == f"{prefix}kill:refund-1"
    with pytest.raises(NothingChanged, match="already killed"):
        service.kill("refund-1", ADMIN, "again")

    service.pause("refund-2", OPERATOR, "checking")
    assert rdb.exists(f"{prefix}pause:refund-2")
    service.resume("refund-2", OPERATOR)
    assert not rdb.exists(f"{prefix}pause:refund-2")
    with pytest.raises(NothingChanged, match="not paused"):
        service.resume("refund-2", OPERATOR)

    service.revive("refund-1", OPERATOR)
    assert not rdb.exists(f"{prefix}kill:refund-1")
    with pytest.raises(NothingChanged, match="not killed"):
        service.revive("refund-1", OPERATOR)
    assert [row["action"] for row in audit_rows(store)] == ["kill", "pause", "resume", "revive"]
    assert [event.kind for event in events] == ["killed", "paused", "resumed", "revived"]
    pubsub.close()


def test_kill_all_needs_an_admin_and_revive_all_a_second_one(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    service.kill_all(ADMIN, "incident 42")
    assert rdb.exists(f"{prefix}kill:all")
    with pytest.raises(NothingChanged, match=r"not killed.*revive all"):
        service.revive("refund-1", OPERATOR)
    requested = service.revive_all(ADMIN)
    assert "second, different admin" in requested.message
    assert rdb.exists(f"{prefix}kill:all")
    with pytest.raises(NothingChanged, match="already asked"):
        service.revive_all(ADMIN)
    with pytest.raises(NotAllowed):
        service.revive_all(OPERATOR)
    assert rdb.exists(f"{prefix}kill:all")
    done = service.revive_all(ADMIN2)
    assert "confirmed by" in done.message
    assert not rdb.exists(f"{prefix}kill:all")
    with pytest.raises(NothingChanged, match="not active"):
        service.revive_all(ADMIN)
    actions = [(row["action"], (row["detail"] or {}).get("step")) for row in audit_rows(store)]
    assert actions == [
        ("kill_all", None),
        ("revive", "requested"),
        ("denied", None),
        ("revive", "confirmed"),
    ]


def test_redirect_and_messages_reach_the_inbox(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    service.redirect("refund-9", OPERATOR, "stop after the refund", escalation_id="esc-1")
    service.relay_message("refund-9", GROUP_MEMBER, "customer called back")
    entries = [fields for _id, fields in rdb.xrange(f"{prefix}inbox:refund-9")]
    assert [(e["kind"], e["author"], e["source"]) for e in entries] == [
        ("redirect", OPERATOR, "operator"),
        ("message", GROUP_MEMBER, "operator"),
    ]
    assert entries[0]["escalation_id"] == "esc-1" and entries[1]["escalation_id"] == ""
    assert set(entries[0]) == {"kind", "text", "author", "source", "at", "escalation_id"}
    with pytest.raises(InvalidInput):
        service.relay_message("refund-9", OPERATOR, "   ")


def test_status_and_overview(service: EscalationService) -> None:
    view, _ = service.open_escalation(escalation(task_id="refund-77"))
    service.kill("refund-77", OPERATOR, "loop")
    status = service.status("refund-77")
    assert status.killed is not None and status.killed.set_by == OPERATOR
    assert status.paused is None and status.killed_all is None
    assert [esc.id for esc in status.escalations] == [view.id]
    assert [record.action for record in status.recent] == ["kill"]
    with pytest.raises(UnknownTask):
        service.status("never-seen")
    overview = service.overview()
    assert [esc.id for esc in overview.open_escalations] == [view.id]
    assert [(c.kind, c.target) for c in overview.controls] == [("kill", "refund-77")]


def test_reconcile_writes_lost_kills_and_pauses_back(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    service.kill("refund-1", OPERATOR, "loop")
    service.pause("refund-2", OPERATOR, "wait")
    service.kill_all(ADMIN, "incident")
    service.pause("refund-3", OPERATOR)
    service.resume("refund-3", OPERATOR)
    original = rdb.get(f"{prefix}kill:refund-1")
    rdb.delete(*[f"{prefix}{key}" for key in ("kill:refund-1", "pause:refund-2", "kill:all")])
    report = service.reconcile()
    assert sorted(report.restored) == sorted(
        f"{prefix}{key}" for key in ("kill:refund-1", "pause:refund-2", "kill:all")
    )
    assert rdb.get(f"{prefix}kill:refund-1") == original
    assert not rdb.exists(f"{prefix}pause:refund-3")
    assert audit_rows(store)[-1]["action"] == "redis_restored"
    assert not service.reconcile().changed  # nothing lost, nothing written, no audit row
    assert audit_rows(store)[-1]["action"] == "redis_restored"
    with store.transaction() as session:
        assert audit.verify(session).ok


def test_a_revive_racing_with_reconcile_is_not_undone(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    """Reconcile reads the active kills, then writes the missing keys outside any lock;
    a revive landing in between must win, not be overwritten by a stale restore."""
    service.kill("refund-race", OPERATOR, "loop")
    rdb.delete(f"{prefix}kill:refund-race")
    original = service.control.ensure_and_count

    def ensure_then_revive(effects, present):  # type: ignore[no-untyped-def]
        restored = original(effects, present)
        service.revive("refund-race", OPERATOR)  # commits and DELs between read and check
        rdb.set(f"{prefix}kill:refund-race", "{}")  # as if our SET NX landed after its DEL
        return restored

    service.control.ensure_and_count = ensure_then_revive  # type: ignore[method-assign]
    report = service.reconcile()
    assert report.restored == ()
    assert not rdb.exists(f"{prefix}kill:refund-race")


def test_listeners_failing_never_break_the_action(service: EscalationService) -> None:
    def broken(_event: ServiceEvent) -> None:
        raise RuntimeError("slack is down")

    service.listeners.append(broken)
    assert service.kill("refund-5", OPERATOR).action == "kill"


def test_concurrent_kills_of_one_task_make_one_kill(
    service: EscalationService, store: Store
) -> None:
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def kill() -> None:
        barrier.wait()
        try:
            service.kill("refund-race", OPERATOR, "race")
            outcomes.append("killed")
        except NothingChanged:
            outcomes.append("already")

    threads = [threading.Thread(target=kill) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already"] * 9 + ["killed"]
    with store.transaction() as session:
        assert session.get(ControlRow, ("kill", "refund-race")) is not None


def test_control_plane_key_names_follow_the_contract(control: ControlPlane, prefix: str) -> None:
    from bot.control import Effect

    assert control.key_of(Effect("kill", "t", "set")) == f"{prefix}kill:t"
    assert control.key_of(Effect("kill", "all", "set")) == f"{prefix}kill:all"
    assert control.key_of(Effect("pause", "t", "set")) == f"{prefix}pause:t"
    assert control.key_of(Effect("inbox", "t", "append")) == f"{prefix}inbox:t"
    assert control.key_of(Effect("decision", "e", "set")) == f"{prefix}decision:e"


def test_asking_again_after_redis_lost_the_decision_gets_it_back(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    esc = escalation()
    view, _ = service.open_escalation(esc)
    service.decide(view.id, OPERATOR, "reject", comment="no")
    rdb.delete(f"{prefix}decision:{view.id}")
    _again, created = service.open_escalation(esc)  # a restarted agent asks again
    assert not created
    decision = json.loads(rdb.get(f"{prefix}decision:{view.id}") or "{}")
    assert decision["decision"] == "rejected" and decision["comment"] == "no"
