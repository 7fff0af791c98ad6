"""Redis down: the caller is told, the audit says what happened, the database keeps the
intent, and reconcile writes it once Redis is back."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from bot.control import ControlPlane, ControlPlaneError
from bot.core import EscalationService
from bot.db import audit
from bot.db.models import ControlRow
from bot.db.store import Store
from bot.errors import ControlPlaneUnavailable
from tests.conftest import ADMIN, OPERATOR
from tests.support.factories import escalation
from tests.support.redis_server import PrivateRedis


def _rows(store: Store) -> list[dict]:
    with store.transaction() as session:
        return [record.as_json() for record in audit.iter_records(session)]


def test_a_kill_with_redis_down_is_kept_and_restored(
    make_service: Callable[..., EscalationService],
    private_redis: PrivateRedis,
    private_control: ControlPlane,
    store: Store,
) -> None:
    service = make_service(private_control)
    private_redis.stop()

    with pytest.raises(ControlPlaneUnavailable) as caught:
        service.kill("refund-1", OPERATOR, "runaway")
    assert "recorded" in caught.value.message and "Redis" in caught.value.message
    assert caught.value.result.action == "kill"

    rows = _rows(store)
    assert [(r["actor"], r["action"]) for r in rows] == [
        (OPERATOR, "kill"),
        ("system", "redis_failed"),
    ]
    assert rows[1]["detail"]["keys"] == ["p:kill:refund-1"]
    with store.transaction() as session:
        row = session.get(ControlRow, ("kill", "refund-1"))
        assert row is not None and row.active
    assert service.overview().pending_effects == 1

    with pytest.raises(ControlPlaneError):
        service.reconcile()  # still down: says so, changes nothing

    private_redis.start()  # an empty Redis: everything it held is gone
    report = service.reconcile()
    assert "p:kill:refund-1" in report.restored
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    value = json.loads(client.get("p:kill:refund-1") or "{}")
    assert value["reason"] == "runaway" and value["by"] == OPERATOR
    client.close()
    assert service.overview().pending_effects == 0
    assert _rows(store)[-1]["action"] == "redis_restored"
    with store.transaction() as session:
        assert audit.verify(session).ok


def test_a_lift_and_a_decision_with_redis_down_are_replayed_from_truth(
    make_service: Callable[..., EscalationService],
    private_redis: PrivateRedis,
    private_control: ControlPlane,
    store: Store,
) -> None:
    service = make_service(private_control)
    service.pause("refund-2", OPERATOR, "hold")
    view, _ = service.open_escalation(escalation(task_id="refund-3"))
    private_redis.stop()
    with pytest.raises(ControlPlaneUnavailable):
        service.resume("refund-2", OPERATOR)
    with pytest.raises(ControlPlaneUnavailable):
        service.decide(view.id, ADMIN, "redirect", instruction="smaller refund")
    assert service.get_escalation(view.id).state == "redirected"  # the decision stands

    private_redis.start()
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    client.set("p:pause:refund-2", "{}")  # as if the old pause had survived
    service.reconcile()
    assert not client.exists("p:pause:refund-2")
    decision = json.loads(client.get(f"p:decision:{view.id}") or "{}")
    assert decision["decision"] == "redirected" and decision["instruction"] == "smaller refund"
    inbox = client.xrange("p:inbox:refund-3")
    assert [fields["kind"] for _id, fields in inbox] == ["redirect"]
    client.close()
