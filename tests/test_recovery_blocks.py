"""The pause's announcement and the restart and abandon modals: snapshots, Slack's
limits, and the payloads their listeners read."""

from __future__ import annotations

import json
from dataclasses import replace

from blocks.actions import Action, TaskButtonValue, TaskModalMetadata
from blocks.messages import announcement, merge_announcements
from blocks.recovery import abandon_modal, restart_modal
from bot.records import AuditRecord
from tests.test_blocks import OPENED, as_json, check_snapshot

PAUSE = AuditRecord(
    9,
    OPENED,
    "U0OPERATOR",
    "pause",
    "refund-4711",
    None,
    "the amount looks wrong",
    None,
    None,
    "v",
    "0" * 64,
    "1" * 64,
)


def buttons(record: AuditRecord) -> list[dict[str, object]]:
    message = announcement(record)
    assert message is not None
    for block in message.blocks:
        block.validate_json()
    return [e for b in as_json(message.blocks) for e in b.get("elements", []) if "action_id" in e]


def test_a_pause_is_announced_with_resume_restart_and_abandon() -> None:
    message = announcement(PAUSE)
    assert message is not None
    check_snapshot("announcement_pause", {"text": message.text, "blocks": as_json(message.blocks)})
    found = buttons(PAUSE)
    assert [b["action_id"] for b in found] == [
        Action.TASK_RESUME.value,
        Action.TASK_RESTART.value,
        Action.TASK_ABANDON.value,
    ]
    assert all(
        TaskButtonValue.model_validate_json(str(b["value"])).task_id == "refund-4711" for b in found
    )
    assert found[2]["style"] == "danger"


def test_an_agent_wide_pause_offers_resume_only() -> None:
    found = buttons(replace(PAUSE, task_id="agent:billing-agent"))
    assert [b["action_id"] for b in found] == [Action.TASK_RESUME.value]
    assert json.loads(str(found[0]["value"]))["t"] == "agent:billing-agent"


def test_a_pause_announcement_stays_a_message_of_its_own() -> None:
    kill = announcement(replace(PAUSE, action="kill"))
    pause = announcement(PAUSE)
    assert kill is not None and pause is not None
    assert [len(m.blocks) for m in merge_announcements([kill, pause, kill, kill])] == [1, 2, 2]


def test_restart_and_abandon_are_announced() -> None:
    restarted = announcement(replace(PAUSE, action="restart", reason="refund 500, not 740"))
    abandoned = announcement(
        replace(
            PAUSE,
            action="abandon",
            reason="abandoned: Sorry.",
            detail={"notice": "Sorry.", "was_paused": True},
        )
    )
    assert restarted is not None and abandoned is not None
    assert "restarted by <@U0OPERATOR>" in restarted.blocks[0].to_dict()["text"]["text"]
    assert "end user is told: Sorry." in abandoned.blocks[0].to_dict()["text"]["text"]


def test_the_modals_are_valid_and_carry_the_task() -> None:
    for name, modal in (
        ("modal_restart", restart_modal("refund-4711", "C0TRIAGE")),
        ("modal_abandon", abandon_modal("refund-4711", "C0TRIAGE")),
    ):
        modal.validate_json()
        data = modal.to_dict()
        meta = TaskModalMetadata.model_validate_json(data["private_metadata"])
        assert (meta.task_id, meta.channel) == ("refund-4711", "C0TRIAGE")
        check_snapshot(name, data)
    assert restart_modal("t").to_dict()["blocks"][1].get("optional") is not True
    assert abandon_modal("t").to_dict()["blocks"][1]["optional"] is True
