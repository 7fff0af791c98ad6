"""Edit then approve, quorums and escalate now (CONTRACTS §11), through the real service,
Redis and both databases."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.models import ApprovalRow, CardRow
from bot.db.store import Store
from bot.errors import AlreadyDecided, InvalidInput, NotAllowed, NothingChanged
from tests.conftest import ADMIN, ADMIN2, GROUP_MEMBER, OPERATOR, STRANGER, StaticDirectory
from tests.support.factories import escalation
from tests.test_sweep import Clock

SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 1, "maximum": 740},
        "currency": {"enum": ["EUR", "USD"]},
    },
    "required": ["amount", "currency"],
}
OPS = ("U0OPS0001", "U0OPS0002", "U0OPS0003")
FIVE = (OPERATOR, ADMIN, ADMIN2, GROUP_MEMBER, OPS[0])


@pytest.fixture
def directory() -> StaticDirectory:
    return StaticDirectory({"S0OPS": frozenset({GROUP_MEMBER, *OPS})})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(
    make_service: Callable[..., EscalationService], control: ControlPlane, clock: Clock
) -> EscalationService:
    return make_service(control, clock=clock, paging=True)


def rows_of(store: Store, escalation_id: str) -> list[dict[str, Any]]:
    with store.reading() as session:
        records = [record.as_json() for record in audit.iter_records(session)]
    return [row for row in records if row["escalation_id"] == escalation_id]


def decision_of(rdb: redis.Redis, prefix: str, escalation_id: str) -> dict[str, Any]:
    raw = rdb.get(f"{prefix}decision:{escalation_id}")
    return {} if raw is None else dict(json.loads(raw))


def approvals_stored(store: Store, escalation_id: str) -> list[str]:
    with store.reading() as session:
        return list(
            session.scalars(
                sa.select(ApprovalRow.approver)
                .where(ApprovalRow.escalation_id == escalation_id)
                .order_by(ApprovalRow.id)
            )
        )


# Edit, then approve


def test_an_edit_is_approved_with_its_arguments_and_audited_with_both(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation())
    result = service.decide(view.id, OPERATOR, "approve", args={"amount": 500, "currency": "EUR"})
    assert "as edited" in result.message
    decision = decision_of(rdb, prefix, view.id)
    assert decision["decision"] == "approved" and decision["args"] == {
        "amount": 500,
        "currency": "EUR",
    }
    assert "approvals" not in decision
    row = rows_of(store, view.id)[-1]
    assert row["action"] == "approve" and row["actor"] == OPERATOR
    assert row["detail"]["proposed"] == {"amount": 740, "currency": "EUR"}
    assert row["detail"]["approved"] == {"amount": 500, "currency": "EUR"}
    assert row["detail"]["changed"] == ["amount: 740 → 500"]
    decided = service.get_escalation(view.id)
    assert decided.edited_args == {"amount": 500, "currency": "EUR"}
    assert decided.edited_by == OPERATOR
    assert decided.action == {"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}}


def test_approving_the_proposed_arguments_unchanged_is_no_edit(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation())
    service.decide(view.id, OPERATOR, "approve", args={"currency": "EUR", "amount": 740})
    assert "args" not in decision_of(rdb, prefix, view.id)
    assert service.get_escalation(view.id).edited_args is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([500], "must be a JSON object"),
        ({"amount": 900, "currency": "EUR"}, r"schema at `amount`: 900 is greater than"),
        ({"amount": 500}, "schema: 'currency' is a required property"),
        ({"amount": 500, "currency": "GBP"}, "schema at `currency`"),
    ],
)
def test_an_edit_that_is_no_object_or_breaks_the_schema_is_refused(
    service: EscalationService,
    store: Store,
    rdb: redis.Redis,
    prefix: str,
    args: Any,
    message: str,
) -> None:
    action = {"name": "issue_refund", "args": {"amount": 740, "currency": "EUR"}, "schema": SCHEMA}
    view, _ = service.open_escalation(escalation(action=action))
    with pytest.raises(InvalidInput, match=message):
        service.decide(view.id, OPERATOR, "approve", args=args)
    assert service.get_escalation(view.id).state == "open"
    assert rdb.get(f"{prefix}decision:{view.id}") is None
    assert [row["action"] for row in rows_of(store, view.id)] == []


def test_an_escalation_with_a_schema_that_is_no_schema_is_refused_at_intake() -> None:
    with pytest.raises(ValueError, match="not a JSON Schema"):
        escalation(action={"name": "x", "args": {}, "schema": {"type": "nothing"}})


def test_an_edit_goes_only_with_approve(service: EscalationService) -> None:
    view, _ = service.open_escalation(escalation())
    with pytest.raises(InvalidInput, match="go with approve, not with reject"):
        service.decide(view.id, OPERATOR, "reject", comment="no", args={"amount": 1})


def test_a_second_edit_after_the_decision_is_refused_and_names_who_decided(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation())
    service.decide(view.id, OPERATOR, "approve", args={"amount": 500, "currency": "EUR"})
    before = rdb.get(f"{prefix}decision:{view.id}")
    with pytest.raises(AlreadyDecided, match=f"already approved by {OPERATOR}"):
        service.decide(view.id, ADMIN, "approve", args={"amount": 100, "currency": "EUR"})
    assert rdb.get(f"{prefix}decision:{view.id}") == before


def test_a_stranger_may_not_edit(service: EscalationService, store: Store) -> None:
    view, _ = service.open_escalation(escalation())
    with pytest.raises(NotAllowed):
        service.decide(view.id, STRANGER, "approve", args={"amount": 1, "currency": "EUR"})
    assert service.get_escalation(view.id).edited_args is None
    assert [row["action"] for row in rows_of(store, view.id)] == ["denied"]


# Quorum


def test_two_of_two_counts_the_same_person_once(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation(approvals=2))
    assert view.approvals_needed == 2
    first = service.decide(view.id, OPERATOR, "approve")
    assert "Approval 1 of 2" in first.message and "1 more needed" in first.message
    with pytest.raises(NothingChanged, match=r"you already approved .* another person must"):
        service.decide(view.id, OPERATOR, "approve")
    waiting = service.get_escalation(view.id)
    assert waiting.is_open and waiting.approvals == (OPERATOR,)
    assert rdb.get(f"{prefix}decision:{view.id}") is None
    service.decide(view.id, GROUP_MEMBER, "approve")
    decision = decision_of(rdb, prefix, view.id)
    assert decision["decision"] == "approved" and decision["by"] == GROUP_MEMBER
    assert decision["approvals"] == [OPERATOR, GROUP_MEMBER]
    rows = rows_of(store, view.id)
    assert [(row["action"], row["detail"].get("step")) for row in rows] == [
        ("approve", "counted"),
        ("approve", None),
    ]
    assert rows[-1]["detail"]["approvals"] == [OPERATOR, GROUP_MEMBER]


def test_the_policy_asks_for_a_quorum_and_the_escalation_may_ask_more(
    make_service: Callable[..., EscalationService], control: ControlPlane
) -> None:
    service = make_service(control)
    view, _ = service.open_escalation(escalation(approvals=3))
    assert view.approvals_needed == 3
    plain, _ = service.open_escalation(escalation())
    assert plain.approvals_needed == 1


@pytest.mark.parametrize(
    ("verdict", "extra", "state"),
    [
        ("reject", {"comment": "too large"}, "rejected"),
        ("terminate", {}, "terminated"),
        ("redirect", {"instruction": "refund 500"}, "redirected"),
    ],
)
def test_one_veto_after_an_approval_decides_at_once(
    service: EscalationService,
    rdb: redis.Redis,
    prefix: str,
    verdict: str,
    extra: dict[str, str],
    state: str,
) -> None:
    view, _ = service.open_escalation(escalation(approvals=3))
    service.decide(view.id, OPERATOR, "approve")
    service.decide(view.id, ADMIN, verdict, **extra)  # type: ignore[arg-type]
    decision = decision_of(rdb, prefix, view.id)
    assert decision["decision"] == state and decision["by"] == ADMIN
    assert "approvals" not in decision
    with pytest.raises(AlreadyDecided, match=f"already {state} by {ADMIN}"):
        service.decide(view.id, ADMIN2, "approve")


def test_twenty_concurrent_approvals_from_five_people_make_one_decision_of_three(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation(approvals=3))
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def approve(i: int) -> None:
        barrier.wait()
        try:
            result = service.decide(view.id, FIVE[i % 5], "approve")
            seen = "decided" if result.message.startswith("Approved") else "counted"
        except NothingChanged:
            seen = "again"
        except AlreadyDecided:
            seen = "late"
        except BaseException as exc:  # pragma: no cover - reported below
            with lock:
                unexpected.append(exc)
            return
        with lock:
            outcomes.append(seen)

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    assert outcomes.count("decided") == 1 and outcomes.count("counted") == 2
    approvers = approvals_stored(store, view.id)
    assert len(approvers) == 3 == len(set(approvers))
    decided = service.get_escalation(view.id)
    assert decided.state == "approved" and decided.approvals == tuple(approvers)
    assert decision_of(rdb, prefix, view.id)["approvals"] == approvers
    rows = rows_of(store, view.id)
    assert [row["detail"].get("step") for row in rows] == ["counted", "counted", None]
    with store.reading() as session:
        assert audit.verify(session).ok


def test_an_expiry_between_approvals_ends_the_quorum(
    timed: EscalationService, clock: Clock, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = timed.open_escalation(escalation(approvals=2, tier="incident"))
    timed.decide(view.id, OPERATOR, "approve")
    clock.advance(minutes=31)
    timed.sweep_tiers()
    assert decision_of(rdb, prefix, view.id)["decision"] == "expired"
    with pytest.raises(AlreadyDecided, match="already expired"):
        timed.decide(view.id, ADMIN, "approve")
    assert approvals_stored(store, view.id) == [OPERATOR]
    assert "approvals" not in decision_of(rdb, prefix, view.id)


def test_a_partial_approval_leaves_the_page_and_the_decision_resolves_it(
    timed: EscalationService,
) -> None:
    view, _ = timed.open_escalation(escalation(approvals=2, tier="incident"))
    assert view.page_wanted == "trigger"
    timed.decide(view.id, OPERATOR, "approve")
    assert timed.get_escalation(view.id).page_wanted == "trigger"
    timed.decide(view.id, ADMIN, "approve")
    assert timed.get_escalation(view.id).page_wanted == "resolve"


def test_an_edit_withdraws_approvals_given_for_other_arguments(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation(approvals=2))
    service.decide(view.id, OPERATOR, "approve")
    edited = {"amount": 500, "currency": "EUR"}
    result = service.decide(view.id, ADMIN, "approve", args=edited)
    assert "Approval 1 of 2" in result.message
    assert service.get_escalation(view.id).approvals == (ADMIN,)
    service.decide(view.id, OPERATOR, "approve")  # now of the edited arguments
    decision = decision_of(rdb, prefix, view.id)
    assert decision["args"] == edited and decision["approvals"] == [ADMIN, OPERATOR]


# Escalate now


def test_escalate_now_climbs_through_the_sweeps_steps(
    timed: EscalationService, store: Store
) -> None:
    view, _ = timed.open_escalation(escalation())
    result = timed.escalate_now(view.id, OPERATOR, "the customer is a journalist")
    assert "to review" in result.message
    moved = timed.get_escalation(view.id)
    assert moved.tier == "review" and moved.state == "open"
    with store.reading() as session:
        channels = [
            (card.channel, card.superseded)
            for card in session.scalars(
                sa.select(CardRow).where(CardRow.escalation_id == view.id).order_by(CardRow.id)
            )
        ]
    assert channels == [("C0TRIAGE", True), ("C0REVIEW", False)]
    row = rows_of(store, view.id)[-1]
    assert row["action"] == "escalate" and row["actor"] == OPERATOR
    assert row["reason"] == "the customer is a journalist"
    assert row["detail"] == {
        "from": "triage",
        "to": "review",
        "pages": False,
        "at_once": True,
    }
    timed.escalate_now(view.id, OPERATOR)
    paged = timed.get_escalation(view.id)
    assert paged.tier == "incident" and paged.page_wanted == "trigger"


def test_escalate_now_at_the_last_tier_is_refused_with_the_reason(
    service: EscalationService, store: Store
) -> None:
    view, _ = service.open_escalation(escalation(tier="incident"))
    with pytest.raises(NothingChanged, match="last tier of its ladder \\(incident\\)"):
        service.escalate_now(view.id, OPERATOR)
    assert service.get_escalation(view.id).tier == "incident"
    assert rows_of(store, view.id) == []


def test_escalate_now_of_a_decided_escalation_or_by_a_stranger_changes_nothing(
    service: EscalationService, store: Store
) -> None:
    view, _ = service.open_escalation(escalation())
    with pytest.raises(NotAllowed):
        service.escalate_now(view.id, STRANGER)
    assert [row["action"] for row in rows_of(store, view.id)] == ["denied"]
    service.decide(view.id, OPERATOR, "approve")
    with pytest.raises(AlreadyDecided, match=f"already approved by {OPERATOR}"):
        service.escalate_now(view.id, ADMIN)
    assert service.get_escalation(view.id).tier == "triage"
