"""Redaction at intake, on both databases and the real Redis: what is stored, where the
placeholders live, what the agent gets back, and `escbot show [--raw]`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import select

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db.models import Base
from bot.db.store import Store
from bot.errors import ControlPlaneUnavailable, InvalidInput
from bot.policy import parse_policy
from tests.conftest import ADMIN, OPERATOR, POLICY_YAML, StaticDirectory
from tests.support.factories import escalation, escalation_data
from tests.support.pii_corpus import sensitive
from tests.support.redis_server import PrivateRedis

EMAIL = "jane.doe@example.com"
PHONE = "+1 415 555 0100"
CARD = "4111 1111 1111 1111"
RAW_POLICY = POLICY_YAML + "redaction:\n  store_raw: true\n  keep: [context.policy_rule]\n"


def personal(**overrides: Any) -> dict[str, Any]:
    """The escalation of the report: an email, a phone and a card number everywhere."""
    return escalation_data(
        reason=f"customer {EMAIL} ({PHONE}) disputes a charge on {CARD}",
        action={
            "name": "issue_refund",
            "args": {"amount": 740, "email": EMAIL, "card": CARD, "note": f"call {PHONE}"},
        },
        context={
            "source": f"email from {EMAIL}",
            "tool_calls": [{"name": "lookup_card", "result": f"card {CARD} belongs to {EMAIL}"}],
            "policy_rule": "refunds.limit jane.doe@example.com",
        },
        **overrides,
    )


def database_text(store: Store) -> str:
    """Every row of every table, as one text: what someone reading the database sees."""
    with store.reading() as session:
        rows = [
            dict(row._mapping)
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
        ]
    return json.dumps(rows, default=str)


def placeholders(rdb: redis.Redis, prefix: str, escalation_id: str) -> dict[str, str]:
    return dict(rdb.hgetall(f"{prefix}redaction:{escalation_id}"))


def decision(rdb: redis.Redis, prefix: str, escalation_id: str) -> dict[str, Any]:
    return dict(json.loads(rdb.get(f"{prefix}decision:{escalation_id}") or "{}"))


def test_the_database_holds_only_placeholders_and_redis_the_map(
    service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, created = service.open_escalation(escalation(**personal()))
    assert created
    assert view.reason == "customer [email-1] ([phone-1]) disputes a charge on [card-1]"
    assert view.action is not None and view.action["args"] == {
        "amount": 740,
        "email": "[email-1]",
        "card": "[card-1]",
        "note": "call [phone-1]",
    }
    assert view.context["tool_calls"][0]["result"] == "card [card-1] belongs to [email-1]"
    stored = database_text(store)
    for value in (EMAIL, PHONE, CARD, CARD.replace(" ", "")):
        assert value not in stored
    mapping = placeholders(rdb, prefix, view.id)
    assert mapping == {"[email-1]": EMAIL, "[phone-1]": PHONE, "[card-1]": CARD}
    assert rdb.ttl(f"{prefix}redaction:{view.id}") == -1  # kept while it is open


def test_placeholders_are_per_escalation(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    first, _ = service.open_escalation(escalation(reason=f"{EMAIL} then bob@example.org"))
    second, _ = service.open_escalation(escalation(reason=f"bob@example.org then {EMAIL}"))
    assert first.reason == second.reason == "[email-1] then [email-2]"
    assert placeholders(rdb, prefix, first.id)["[email-1]"] == EMAIL
    assert placeholders(rdb, prefix, second.id)["[email-1]"] == "bob@example.org"


def test_the_agent_gets_its_own_values_back_and_peoples_words_as_written(
    service: EscalationService, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = service.open_escalation(escalation(**personal()))
    edited = {"amount": 500, "email": "[email-1]", "card": "[card-1]", "note": "call [phone-1]"}
    with pytest.raises(InvalidInput, match=r"\[email-7\]"):
        service.decide(view.id, OPERATOR, "approve", args=edited | {"email": "[email-7]"})
    assert decision(rdb, prefix, view.id) == {}

    service.decide(view.id, OPERATOR, "approve", args=edited)
    value = decision(rdb, prefix, view.id)
    assert value["args"] == {"amount": 500, "email": EMAIL, "card": CARD, "note": f"call {PHONE}"}
    shown = service.get_escalation(view.id)
    assert shown.edited_args is not None and shown.edited_args["email"] == "[email-1]"
    ttl = rdb.ttl(f"{prefix}redaction:{view.id}")
    assert 0 < ttl <= 24 * 3600  # a day past the decision

    other, _ = service.open_escalation(escalation(**personal()))
    service.decide(other.id, OPERATOR, "reject", comment=f"write to {EMAIL} first")
    assert decision(rdb, prefix, other.id)["comment"] == f"write to {EMAIL} first"


def test_without_redis_nothing_is_stored_and_the_entry_can_come_again(
    make_service: Callable[..., EscalationService],
    private_redis: PrivateRedis,
    private_control: ControlPlane,
    store: Store,
) -> None:
    service = make_service(private_control)
    data = personal()
    private_redis.stop()
    with pytest.raises(ControlPlaneUnavailable):
        service.open_escalation(escalation(**data))
    assert service.find_escalation(data["escalation_id"]) is None
    private_redis.start()
    view, created = service.open_escalation(escalation(**data))
    assert created and "[email-1]" in view.reason


@pytest.fixture
def raw_service(
    store: Store, control: ControlPlane, directory: StaticDirectory
) -> EscalationService:
    return EscalationService(store, control, parse_policy(RAW_POLICY.encode()), directory=directory)


def test_store_raw_keeps_the_original_shown_only_to_an_admin_and_audited(
    raw_service: EscalationService, store: Store, rdb: redis.Redis, prefix: str
) -> None:
    view, _ = raw_service.open_escalation(escalation(**personal()))
    assert view.context["policy_rule"] == "refunds.limit jane.doe@example.com"  # keep
    assert placeholders(rdb, prefix, view.id)["[email-1]"] == EMAIL  # threads still use it
    plain = raw_service.show_escalation(view.id, OPERATOR, raw=False)
    assert plain.raw is None and "[email-1]" in plain.escalation.reason
    assert not [r for r in raw_service.status(view.task_id).recent if r.action == "show_raw"]

    with pytest.raises(Exception, match="needs the admin role"):
        raw_service.show_escalation(view.id, OPERATOR, raw=True)
    shown = raw_service.show_escalation(view.id, ADMIN, raw=True)
    assert shown.raw is not None and shown.raw["reason"].startswith(f"customer {EMAIL}")
    actions = [(r.action, r.actor) for r in raw_service.status(view.task_id).recent]
    assert ("show_raw", ADMIN) in actions and ("denied", OPERATOR) in actions

    raw_service.decide(view.id, OPERATOR, "approve", args={**view.proposed_args, "amount": 1})
    assert json.loads(rdb.get(f"{prefix}decision:{view.id}") or "{}")["args"]["email"] == EMAIL


def test_show_raw_is_refused_when_no_raw_copy_was_kept(service: EscalationService) -> None:
    view, _ = service.open_escalation(escalation(**personal()))
    with pytest.raises(InvalidInput, match="no raw copy"):
        service.show_escalation(view.id, ADMIN, raw=True)
    assert not [r for r in service.status(view.task_id).recent if r.action == "show_raw"]


def test_every_corpus_value_is_redacted_at_intake(service: EscalationService, store: Store) -> None:
    samples = sensitive(120, seed=77)
    for start in range(0, len(samples), 12):
        batch = samples[start : start + 12]
        service.open_escalation(
            escalation(
                reason=batch[0].text,
                action={"name": "reply", "args": {"texts": [s.text for s in batch[1:6]]}},
                context={"thread": [s.text for s in batch[6:]]},
            )
        )
    stored = database_text(store)
    leaked = [s for s in samples if s.value in stored or json.dumps(s.value)[1:-1] in stored]
    assert leaked == []
