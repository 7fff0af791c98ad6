"""The guards' I/O-free core: the rules, without Redis."""

from __future__ import annotations

import json
import logging

import pytest
from escbot_agent import ApprovalOutcome, ControlPlaneUnreachable, TaskKilled
from escbot_agent.core import GuardCore
from escbot_agent.payloads import InboxPlan

KILL = json.dumps({"reason": "runaway", "by": "U1", "at": "2026-11-22T03:31:39.805669Z"})


def core(**options: object) -> GuardCore:
    settings: dict = {
        "prefix": "p:",
        "agent": "billing-agent",
        "consumer": None,
        "on_unreachable": "pause",
        "reread_interval": 1.0,
    }
    return GuardCore("refund-1", **(settings | options))


def entry(text: str, kind: str = "message", escalation_id: str = "") -> dict[str, str]:
    return {
        "kind": kind,
        "text": text,
        "author": "U1",
        "source": "operator",
        "at": "2026-11-22T03:31:39.805669Z",
        "escalation_id": escalation_id,
    }


def reply(*entries: tuple[str, dict[str, str] | None]) -> list:
    return [["p:inbox:refund-1", list(entries)]]


def test_entries_are_handed_out_once_and_acknowledged_once_taken() -> None:
    guard = core()
    assert guard.consumer == "billing-agent"
    plan = guard.plan_inbox()
    assert plan == InboxPlan(ack=(), read=True)
    first = guard.inbox_read(plan, [reply(), reply(("1-0", entry("a")), ("2-0", entry("b")))])
    assert [m.text for m in first] == ["a", "b"]

    # The pending list returns them again (not yet acknowledged): not handed out twice.
    guard.inbox_changed()
    again = guard.inbox_read(
        guard.plan_inbox(), [reply(("1-0", entry("a")), ("2-0", entry("b"))), reply()]
    )
    assert again == []
    assert not guard.quiet

    guard.confirm_taken()  # the agent is back at a checkpoint
    plan = guard.plan_inbox()
    assert plan == InboxPlan(ack=("1-0", "2-0"), read=False)
    assert guard.inbox_read(plan, [2]) == []  # XACK answered 2
    assert guard.quiet is False  # never read the control keys: not reachable yet
    guard.apply_controls([None] * 5, now=0.0)
    assert guard.quiet


def test_bad_entries_and_repeated_redirects_are_acknowledged_not_handed_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = core()
    guard.note_outcome(ApprovalOutcome("esc-1", "redirected", "U1", "t", instruction="refund 500"))
    messages = guard.inbox_read(
        guard.plan_inbox(),
        [
            reply(("1-0", {})),  # deleted while pending
            reply(
                ("2-0", {"text": "no kind"}),
                ("3-0", entry("refund 500", "redirect", "esc-1")),
                ("4-0", entry("stop", "redirect")),
            ),
        ],
    )
    assert [(m.id, m.kind, m.escalation_id) for m in messages] == [("4-0", "redirect", None)]
    assert guard.plan_inbox().ack == ("1-0", "2-0", "3-0")
    assert "is not an inbox entry of the contract" in caplog.text


def test_a_failed_inbox_read_is_kept_for_the_next_checkpoint() -> None:
    guard = core()
    plan = guard.plan_inbox()
    guard.inbox_failed(plan, OSError("connection reset"), strict=False)
    assert guard.inbox_dirty
    with pytest.raises(ControlPlaneUnreachable, match="connection reset"):
        guard.inbox_failed(guard.plan_inbox(), OSError("connection reset"), strict=True)
    with pytest.raises(ControlPlaneUnreachable):
        core(on_unreachable="raise").inbox_failed(plan, OSError("down"), strict=False)


def test_the_view_fails_closed_when_stale_and_a_kill_stands_through_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="escbot_agent")
    guard = core()
    assert guard.state(now=0.0) == "starting"
    guard.apply_controls([None] * 5, now=100.0)
    assert guard.verdict(now=101.0) == "go"
    assert guard.verdict(now=100.0 + guard.stale_after) == "unreachable"  # reader stuck
    assert caplog.text.count("failing closed") == 1
    guard.verdict(now=200.0)
    assert caplog.text.count("failing closed") == 1  # said once per outage

    guard.apply_controls([KILL, None, "1", None, None], now=300.0)
    assert "reachable again" in caplog.text
    guard.mark_unreachable("connection refused", now=301.0)
    assert guard.verdict(now=302.0) == "killed"
    with pytest.raises(TaskKilled) as caught:
        guard.check_killed()
    assert (caught.value.reason, caught.value.by, caught.value.key) == (
        "runaway",
        "U1",
        "p:kill:refund-1",
    )
    assert guard.paused is not None and "p:pause:refund-1 is set ('1')" in guard.paused.reason


def test_messages_of_the_subscription() -> None:
    guard = core()
    guard.inbox_dirty = False
    message = {"type": "message", "data": "p:kill:all"}
    assert guard.on_message(message) == (True, None)
    assert guard.on_message(message | {"data": "p:pause:refund-1"}) == (True, None)
    assert guard.on_message(message | {"data": b"p:decision:esc-9"}) == (False, "esc-9")
    assert guard.on_message(message | {"data": "p:kill:refund-2"}) == (False, None)
    assert guard.on_message(message | {"data": "p:inbox:refund-1"}) == (False, None)
    assert guard.inbox_dirty
    guard.inbox_dirty = False
    assert guard.on_message({"type": "subscribe", "data": 1}) == (True, None)  # reconnected
    assert guard.inbox_dirty


def test_a_misspelt_escalation_option_is_refused() -> None:
    from escbot_agent.payloads import build_escalation

    with pytest.raises(TypeError, match="severty"):
        build_escalation(
            "t-1",
            "agent",
            reason="r",
            kind="exception",
            action=None,
            args=None,
            options={"severty": "high"},  # type: ignore[typeddict-unknown-key]
        )
