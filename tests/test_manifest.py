"""app_manifest.yaml is valid for Slack, and it, the listeners and the blocks agree."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from blocks.actions import Action, Callback
from blocks.card import escalation_card
from blocks.digest import digest_message
from blocks.messages import announcement
from blocks.review import review_card
from bot.records import AuditRecord
from bot.slack.app import create_app
from handlers.deps import Deps, Registry
from tests.test_blocks import BASE, NOW, STATES, as_json
from tests.test_review_blocks import STATES as REVIEW_STATES

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT.parent / "shared" / "slack"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "app_manifest.yaml").read_text())


@pytest.fixture(scope="module")
def registry() -> Registry:
    deps = Deps(service=None, delivery=None)  # type: ignore[arg-type]
    _app, registry = create_app(
        token="xoxb-test", api_url="http://127.0.0.1:9/api/", signing_secret="secret", deps=deps
    )
    return registry


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
@pytest.mark.parametrize("socket_mode", [False, True])
def test_the_manifest_is_valid_against_slacks_schema(
    manifest: dict[str, Any], version: str, socket_mode: bool
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    path = SCHEMAS / f"manifest.schema.{version}.json"
    if not path.exists():
        pytest.skip(f"Slack's manifest schemas are not beside this clone ({SCHEMAS})")
    variant = json.loads(json.dumps(manifest))
    variant["settings"]["socket_mode_enabled"] = socket_mode
    jsonschema.validate(variant, json.loads(path.read_text()))


def test_the_manifest_asks_for_what_the_bot_uses(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "commands", "channels:history", "reactions:write"} <= scopes
    assert "message.channels" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_every_command_and_event_in_the_manifest_has_a_listener_and_back(
    manifest: dict[str, Any], registry: Registry
) -> None:
    commands = {command["command"] for command in manifest["features"]["slash_commands"]}
    assert commands == registry.commands
    events = {
        name.split(".")[0] for name in manifest["settings"]["event_subscriptions"]["bot_events"]
    }
    assert events == registry.events


def test_every_action_and_callback_id_has_a_listener_and_back(registry: Registry) -> None:
    assert registry.actions == {action.value for action in Action}
    assert registry.modal_callbacks == {callback.value for callback in Callback}


def test_every_action_id_the_blocks_emit_has_a_listener(registry: Registry) -> None:
    emitted: set[str] = set()
    for view, ctx in STATES.values():
        for block in as_json(escalation_card(view, ctx, NOW).blocks):
            emitted |= {e["action_id"] for e in block.get("elements", []) if "action_id" in e}
    record = AuditRecord(
        1,
        NOW,
        "U0ADMIN1",
        "revive",
        "all",
        None,
        None,
        None,
        {"step": "requested"},
        "v",
        "0" * 64,
        "1" * 64,
    )
    message = announcement(record)
    paused = announcement(replace(record, action="pause", task_id="refund-4711", detail=None))
    assert message is not None and paused is not None
    review = review_card(*REVIEW_STATES["decision_waiting"])
    digest = digest_message([BASE, BASE], tier="triage", deadline=None)
    shown = [message.blocks, paused.blocks, review.blocks, digest.blocks]
    for block in [item for blocks in shown for item in as_json(blocks)]:
        emitted |= {e["action_id"] for e in block.get("elements", []) if "action_id" in e}
    # A digest numbers its buttons (escalation.open.0, .1 …): one listener for them all.
    emitted = {re.sub(r"^(escalation\.open)\.\d+$", r"\1", action) for action in emitted}
    assert emitted == registry.actions
    assert BASE.id
