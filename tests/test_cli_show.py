"""`escbot show [--raw]` as a process against the real Redis and database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core import EscalationService
from tests.support.cli import Cli
from tests.support.factories import escalation
from tests.test_redaction_intake import CARD, EMAIL, RAW_POLICY, personal, raw_service

__all__ = ["raw_service"]  # the fixture, shared with the service tests


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """`escbot show` as a process: one database is enough (the service tests run both)."""
    return request.param


def test_escbot_show(
    tmp_path: Path,
    redis_url: str,
    prefix: str,
    database_url: str,
    raw_service: EscalationService,
    service: EscalationService,
) -> None:
    (tmp_path / "policy.yaml").write_text(RAW_POLICY)
    cli = Cli(
        tmp_path,
        {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": database_url},
    )
    kept, _ = raw_service.open_escalation(escalation(**personal()))
    plain = cli("show", kept.id, "--by", "alice")
    assert plain.code == 0 and "reason: customer [email-1] ([phone-1])" in plain.out
    assert f"customer {EMAIL}" not in plain.out and CARD not in plain.out
    assert "as the agent sent it" not in plain.out

    raw = cli("show", kept.id, "--raw", "--by", "alice")
    assert raw.code == 0 and f"customer {EMAIL}" in raw.out and "records this look" in raw.out
    as_json = json.loads(cli("show", kept.id, "--raw", "--json", "--by", "bob").out)
    assert as_json["raw"]["action"]["args"]["email"] == EMAIL
    assert as_json["escalation"]["action"]["args"]["email"] == "[email-1]"
    rows = [(r.action, r.actor) for r in service.status(kept.task_id).recent]
    assert ("show_raw", "cli:alice") in rows and ("show_raw", "cli:bob") in rows

    redacted_only, _ = service.open_escalation(escalation(**personal()))
    refused = cli("show", redacted_only.id, "--raw", "--by", "alice")
    assert refused.code == 1 and "no raw copy" in refused.err and EMAIL not in refused.err
    assert EMAIL not in cli("show", redacted_only.id, "--by", "alice").out
    unknown = cli("show", "esc-nope", "--by", "alice")
    assert unknown.code == 1 and "unknown escalation 'esc-nope'" in unknown.err
