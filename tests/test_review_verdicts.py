"""Verdicts on sampled reviews through the real service, Redis and both databases: each
sampled item owed its card, *looks right* and *flagged* as `review` audit rows given once,
a flag that pauses the task or its agent in the same transaction, strangers refused."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.core.review_delivery import ReviewDelivery, review_channel
from bot.db import audit
from bot.db.models import OutboxRow
from bot.db.store import Store
from bot.errors import (
    AlreadyReviewed,
    ControlPlaneUnavailable,
    InvalidInput,
    NotAllowed,
    UnknownReview,
)
from bot.policy import parse_policy
from bot.records import ReviewItem
from tests.conftest import ADMIN, OPERATOR, STRANGER, StaticDirectory
from tests.support.factories import escalation
from tests.support.redis_server import PrivateRedis
from tests.test_policy_service import policy_yaml

ACTIONS = {
    "send_reply": {"decide": "auto", "review_sample": 1.0},
    "issue_refund": {"decide": "auto", "review_sample": 1.0},
}
REVIEWED_POLICY = policy_yaml(actions=ACTIONS)


def make(store: Store, control: ControlPlane, directory: StaticDirectory) -> EscalationService:
    return EscalationService(
        store, control, parse_policy(REVIEWED_POLICY.encode()), directory=directory
    )


@pytest.fixture
def ruled(store: Store, control: ControlPlane, directory: StaticDirectory) -> EscalationService:
    return make(store, control, directory)


def sampled_decision(service: EscalationService, **overrides: Any) -> ReviewItem:
    data: dict[str, Any] = {
        "task_type": "support",
        "action": {"name": "send_reply", "args": {"to": "customer-1"}},
    }
    record, _ = service.open_escalation(escalation(**(data | overrides)))
    assert record.state == "approved"
    [review] = [r for r in service.overview().reviews if r.subject_id == record.id]
    return review


def sampled_task(service: EscalationService) -> ReviewItem:
    task_id = f"refund-{uuid.uuid4().hex[:6]}"
    assert service.task_finished(task_id, "billing-agent", task_type="refund", notice="Done.")
    [review] = [r for r in service.overview().reviews if r.subject_id == task_id]
    return review


def audit_rows(store: Store, **match: Any) -> list[dict[str, Any]]:
    with store.reading() as session:
        rows = [record.as_json() for record in audit.iter_records(session)]
    return [row for row in rows if all(row.get(k) == v for k, v in match.items())]


def test_each_sampled_item_is_owed_its_card_in_the_right_channel(
    ruled: EscalationService, store: Store
) -> None:
    decision = sampled_decision(ruled)
    refund = sampled_decision(
        ruled, task_type="refund", action={"name": "issue_refund", "args": {"amount": 20}}
    )
    task = sampled_task(ruled)
    with store.reading() as session:
        owed = session.execute(
            sa.select(OutboxRow.key, OutboxRow.escalation_id, OutboxRow.wanted).where(
                OutboxRow.topic == "review"
            )
        ).all()
    assert sorted(owed) == sorted(
        [
            (str(decision.id), decision.escalation_id, "post"),
            (str(refund.id), refund.escalation_id, "post"),
            (str(task.id), None, "post"),
        ]
    )
    claimed = {p.review.id: p for p in ReviewDelivery(store, "w").claim()}
    assert set(claimed) == {decision.id, refund.id, task.id}
    channels = {rid: review_channel(ruled.policy, p) for rid, p in claimed.items()}
    # The decided escalation's ladder's first tier; a finished task: the first tier.
    assert channels == {decision.id: "C0TRIAGE", refund.id: "C0PAYTRI", task.id: "C0TRIAGE"}
    assert claimed[refund.id].escalation is not None
    assert claimed[refund.id].escalation.decided_by == "policy"  # type: ignore[union-attr]


def test_looks_right_is_one_audit_row_and_a_second_verdict_changes_nothing(
    ruled: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    review = sampled_decision(ruled)
    result = ruled.review(review.id, OPERATOR, "looks_right")
    assert "looks right" in result.message
    [row] = audit_rows(store, action="review")
    assert (row["actor"], row["task_id"], row["escalation_id"]) == (
        OPERATOR,
        review.task_id,
        review.escalation_id,
    )
    assert row["detail"] == {
        "verdict": "looks_right",
        "review": review.id,
        "subject": "decision",
        "subject_id": review.subject_id,
        "note": None,
        "pause": None,
    }
    given = ruled.get_review(review.id)
    assert (given.verdict, given.verdict_by, given.paused) == ("looks_right", OPERATOR, None)
    assert given.verdict_at is not None
    assert review.id not in [r.id for r in ruled.overview().reviews]  # no longer waiting

    with pytest.raises(AlreadyReviewed) as caught:
        ruled.review(review.id, ADMIN, "flagged", note="no", pause="agent")
    assert (caught.value.verdict, caught.value.by) == ("looks right", OPERATOR)
    assert len(audit_rows(store, action="review")) == 1
    assert audit_rows(store, action="pause") == []
    assert not rdb.exists(f"{prefix}pause:agent:billing-agent")
    assert ruled.get_review(review.id).verdict_by == OPERATOR


def test_a_flag_pauses_the_task_in_the_verdicts_transaction(
    ruled: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    review = sampled_task(ruled)
    result = ruled.review(review.id, OPERATOR, "flagged", note="promised too much", pause="task")
    assert "flagged: promised too much" in result.message and "Paused" in result.message
    rows = audit_rows(store, task_id=review.task_id)
    assert [r["action"] for r in rows] == ["review", "pause"]
    assert rows[1]["seq"] == rows[0]["seq"] + 1 and rows[0]["at"] == rows[1]["at"]
    assert rows[0]["detail"]["pause"] == review.task_id
    assert rows[0]["detail"]["note"] == "promised too much" == rows[0]["reason"]
    assert rows[1]["actor"] == OPERATOR
    assert rows[1]["reason"] == f"flagged in review {review.id}: promised too much"
    value = json.loads(rdb.get(f"{prefix}pause:{review.task_id}") or "{}")
    assert value["by"] == OPERATOR and value["reason"].startswith("flagged in review")
    assert ruled.status(review.task_id).paused is not None
    assert ruled.get_review(review.id).paused == review.task_id


def test_a_flag_can_pause_every_task_of_the_agent(
    ruled: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    review = sampled_decision(ruled)
    ruled.review(review.id, OPERATOR, "flagged", note="wrong template", pause="agent")
    key = f"{prefix}pause:agent:billing-agent"
    assert json.loads(rdb.get(key) or "{}")["by"] == OPERATOR
    [pause] = audit_rows(store, action="pause")
    assert pause["task_id"] == "agent:billing-agent"
    assert pause["escalation_id"] == review.escalation_id
    assert ruled.get_review(review.id).paused == "agent:billing-agent"


def test_a_flag_on_a_task_already_paused_flags_and_leaves_the_pause(
    ruled: EscalationService, store: Store
) -> None:
    review = sampled_task(ruled)
    ruled.pause(review.task_id, ADMIN, "looking at it")
    result = ruled.review(review.id, OPERATOR, "flagged", note="wrong", pause="task")
    assert "already paused" in result.message
    assert [r["actor"] for r in audit_rows(store, action="pause")] == [ADMIN]
    assert ruled.get_review(review.id).verdict == "flagged"
    assert ruled.status(review.task_id).paused.set_by == ADMIN  # type: ignore[union-attr]


def test_a_stranger_is_refused_audited_and_changes_nothing(
    ruled: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    review = sampled_task(ruled)
    with pytest.raises(NotAllowed, match="review needs the operator role"):
        ruled.review(review.id, STRANGER, "flagged", note="bad", pause="task")
    [denied] = audit_rows(store, action="denied")
    assert (denied["actor"], denied["task_id"]) == (STRANGER, review.task_id)
    assert denied["detail"] == {"attempted": "review"}
    assert audit_rows(store, action="review") == [] and audit_rows(store, action="pause") == []
    assert not rdb.exists(f"{prefix}pause:{review.task_id}")
    assert ruled.get_review(review.id).verdict is None


@pytest.mark.parametrize(
    ("review_id", "verdict", "options", "error", "says"),
    [
        (None, "flagged", {}, InvalidInput, "what is wrong is required"),
        (None, "flagged", {"note": "   "}, InvalidInput, "what is wrong is required"),
        (None, "looks_right", {"pause": "task"}, InvalidInput, "only a flag can pause"),
        (None, "flagged", {"note": "x", "pause": "all"}, InvalidInput, "unknown pause"),
        (None, "maybe", {}, InvalidInput, "unknown verdict"),
        ("abc", "looks_right", {}, InvalidInput, "invalid review id"),
        ("-3", "looks_right", {}, InvalidInput, "invalid review id"),
        ("0", "looks_right", {}, InvalidInput, "invalid review id"),
        ("987654", "looks_right", {}, UnknownReview, "unknown review 987654"),
    ],
)
def test_a_malformed_verdict_is_refused_and_changes_nothing(
    ruled: EscalationService,
    store: Store,
    review_id: str | None,
    verdict: str,
    options: dict[str, str],
    error: type[Exception],
    says: str,
) -> None:
    review = sampled_task(ruled)
    with pytest.raises(error, match=says):
        ruled.review(review_id or review.id, OPERATOR, verdict, **options)
    assert audit_rows(store) == []
    assert ruled.get_review(review.id).verdict is None


def test_two_verdicts_at_once_one_wins(ruled: EscalationService, store: Store) -> None:
    review = sampled_decision(ruled)
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def give(actor: str, verdict: str) -> None:
        start.wait()
        try:
            ruled.review(review.id, actor, verdict, note="x" if verdict == "flagged" else None)
            outcomes[actor] = "won"
        except AlreadyReviewed:
            outcomes[actor] = "refused"

    threads = [
        threading.Thread(target=give, args=(OPERATOR, "looks_right")),
        threading.Thread(target=give, args=(ADMIN, "flagged")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["refused", "won"]
    [row] = audit_rows(store, action="review")
    winner = next(actor for actor, outcome in outcomes.items() if outcome == "won")
    assert row["actor"] == winner == ruled.get_review(review.id).verdict_by


def test_a_flag_and_pause_with_redis_down_is_recorded_and_written_later(
    store: Store,
    directory: StaticDirectory,
    private_redis: PrivateRedis,
    private_control: ControlPlane,
) -> None:
    service = make(store, private_control, directory)
    review = sampled_task(service)
    private_redis.stop()
    with pytest.raises(ControlPlaneUnavailable, match="pause:"):
        service.review(review.id, OPERATOR, "flagged", note="bad", pause="task")
    assert [r["action"] for r in audit_rows(store)] == ["review", "pause", "redis_failed"]
    assert service.get_review(review.id).verdict == "flagged"
    private_redis.start()
    assert f"p:pause:{review.task_id}" in service.reconcile().restored
