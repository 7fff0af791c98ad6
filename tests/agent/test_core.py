"""The guards' I/O-free core: the rules, without Redis."""

from __future__ import annotations

import contextlib
import json
import logging

import pytest
from escbot_agent import ApprovalOutcome, ControlPlaneUnreachable, TaskKilled
from escbot_agent.core import GuardCore
from escbot_agent.payloads import InboxPlan
from escbot_agent.shared_view import Seat, SharedView

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


def test_announcements_carry_the_value_and_reach_only_their_keys() -> None:
    """The process's shared view (no I/O): an announcement on `control:{key}` is applied
    to the guards that obey that key, with the value it carries."""
    guard = core()
    guard.inbox_dirty = False
    seen: list[str] = []
    seat = Seat(
        core=guard,
        push=True,
        heartbeat=None,
        lock=contextlib.nullcontext(),
        changed=lambda: seen.append("changed"),
        decided=lambda eid, raw: seen.append(f"decided {eid} {json.loads(raw)['decision']}"),
        started=lambda: None,
        beat_answered=lambda error: None,
    )
    view = SharedView()
    channels, batch, polled = view.admit([seat])
    assert set(channels) == {
        "p:control:kill:refund-1",
        "p:control:kill:all",
        "p:control:pause:refund-1",
        "p:control:kill:agent:billing-agent",
        "p:control:pause:agent:billing-agent",
        "p:control:inbox:refund-1",
    }
    assert batch is not None and polled == []
    for _ in channels:
        done = view.confirmed()
    assert done is batch  # read once every subscription is confirmed

    def announce(key: str, op: str, value: object = None) -> None:
        view.announce(f"p:control:{key}", json.dumps({"key": key, "op": op, "value": value}))

    announce("kill:all", "set", json.loads(KILL))
    assert guard.killed_error().all_tasks and seen == ["changed"]
    announce("kill:all", "delete")
    assert not guard.is_killed
    announce("pause:refund-1", "set", json.loads(KILL))
    assert guard.pause_in_force is not None and guard.pause_in_force.by == "U1"
    view.announce("p:control:kill:refund-2", json.dumps({"op": "set", "value": {}}))
    assert seen == ["changed"] * 3  # not this process's key: nothing
    announce("inbox:refund-1", "append")
    assert guard.inbox_dirty
    assert view.watch(seat, "p:decision:esc-9") == "p:control:decision:esc-9"
    announce("decision:esc-9", "set", {"decision": "approved", "by": "U1", "at": ""})
    assert seen[-1] == "decided esc-9 approved"
    assert set(view.remove(seat)) == {*channels, "p:control:decision:esc-9"}


def test_a_reread_keeps_a_value_announced_while_it_was_on_its_way() -> None:
    guard = core()
    seat = Seat(
        core=guard,
        push=True,
        heartbeat=None,
        lock=contextlib.nullcontext(),
        changed=lambda: None,
        decided=lambda eid, raw: None,
        started=lambda: None,
        beat_answered=lambda error: None,
    )
    view = SharedView()
    view.admit([seat])

    class Pipe:
        def mget(self, keys: list[str]) -> None: ...
        def xrevrange(self, key: str, count: int) -> None: ...

    plan = view.queue_reread(Pipe(), [seat])
    # The kill is revoked while the MGET that still saw it is on its way.
    view.announce("p:control:kill:refund-1", json.dumps({"op": "delete", "value": None}))
    view.apply_reread(plan, [[KILL, None, None, None, None], []], now=1.0)
    assert not guard.is_killed  # the announcement came later: it stands
    plan = view.queue_reread(Pipe(), [seat])
    view.apply_reread(plan, [[KILL, None, None, None, None], []], now=2.0)
    assert guard.is_killed  # a key written without an announcement: the re-read sees it


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
