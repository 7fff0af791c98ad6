"""The inbox bookkeeping both guards share, without I/O: `inbox:{task_id}` read with a
consumer group, each entry handed out exactly once per consumer and acknowledged once the
agent took it. `GuardCore` derives from it; every method runs under the guard's lock (or
on its event loop)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from escbot_agent.contracts import InboxEntry

from .errors import ControlPlaneUnreachable
from .payloads import (
    INBOX_BATCH,
    ApprovalOutcome,
    FailMode,
    InboxMessage,
    InboxPlan,
    as_text,
    describe,
    log,
    stream_entries,
)


class InboxBook:
    """What a guard's core knows of the inbox: what is dirty, handed out, to acknowledge."""

    __slots__ = ("_handed", "_inbox_top", "_known", "_to_ack", "inbox_dirty", "redirected")

    inbox_key: str
    consumer: str
    on_unreachable: FailMode

    def _init_inbox(self) -> None:
        self.inbox_dirty = True
        self.redirected: set[str] = set()  # escalations whose redirect request_approval returned
        self._inbox_top: str | None = None
        self._handed: list[str] = []  # returned by the last checkpoint, not yet taken
        self._to_ack: list[str] = []  # taken (or skipped), not yet acknowledged
        self._known: set[str] = set()  # handed or skipped, until acknowledged

    def refresh(self) -> None:
        raise NotImplementedError

    @property
    def inbox_idle(self) -> bool:
        """Nothing for a checkpoint to read or acknowledge."""
        return not (self.inbox_dirty or self._handed or self._to_ack)

    def apply_inbox_top(self, top: Any) -> None:
        """The inbox's newest entry (XREVRANGE + - COUNT 1): a missed announcement of the
        inbox shows as a newer id."""
        newest = as_text(top[0][0]) if top else None
        if newest != self._inbox_top:
            self._inbox_top = newest
            if newest is not None:
                self.inbox_changed()

    def reconnected(self) -> None:
        """A (re)subscription: announcements may have been missed meanwhile."""
        self.inbox_changed()

    def inbox_changed(self) -> None:
        self.inbox_dirty = True
        self.refresh()

    def confirm_taken(self, *, refresh: bool = True) -> None:
        """The agent is back at a checkpoint (or said so): it took the last batch."""
        if self._handed:
            self._to_ack.extend(self._handed)
            self._handed.clear()
            if refresh:
                self.refresh()

    def plan_inbox(self) -> InboxPlan:
        plan = InboxPlan(ack=tuple(self._to_ack), read=self.inbox_dirty)
        self.inbox_dirty = False  # cleared before the read: a push meanwhile sets it again
        return plan

    def queue_inbox(self, pipe: Any, plan: InboxPlan) -> None:
        """Queue the plan's commands on a (sync or asyncio) pipeline."""
        if plan.ack:
            pipe.xack(self.inbox_key, self.consumer, *plan.ack)
        if plan.read:
            pipe.xreadgroup(self.consumer, self.consumer, {self.inbox_key: "0"})
            pipe.xreadgroup(self.consumer, self.consumer, {self.inbox_key: ">"}, count=INBOX_BATCH)

    def plan_ack(self) -> InboxPlan:
        return InboxPlan(ack=tuple(self._to_ack), read=False)

    def inbox_failed(self, plan: InboxPlan, exc: BaseException, *, strict: bool) -> None:
        """Keep what the failed round trip was to do for the next checkpoint; raise
        ControlPlaneUnreachable when `strict` or under on_unreachable="raise"."""
        self.inbox_dirty = self.inbox_dirty or plan.read
        self.refresh()
        if strict or self.on_unreachable == "raise":
            raise ControlPlaneUnreachable(
                f"{self.inbox_key} could not be read: {describe(exc)}"
            ) from exc
        log.warning(
            "%s could not be read (%s); retried at the next checkpoint",
            self.inbox_key,
            describe(exc),
        )

    def inbox_read(self, plan: InboxPlan, replies: Sequence[Any]) -> list[InboxMessage]:
        """The replies of `queue_inbox`, as the messages to hand out.

        Exactly once: an entry handed out (or skipped) is never handed again until it is
        acknowledged, whether it comes back from the pending list or not."""
        pending, new = (stream_entries(r) for r in replies[-2:]) if plan.read else ([], [])
        if plan.ack:
            acked = set(plan.ack)
            self._to_ack = [entry for entry in self._to_ack if entry not in acked]
            self._known -= acked
        if len(new) >= INBOX_BATCH:
            self.inbox_dirty = True
        messages = []
        for entry_id, fields in (*pending, *new):
            if entry_id in self._known:
                continue
            self._known.add(entry_id)
            message = self._message(entry_id, fields)
            if message is None:
                self._to_ack.append(entry_id)
            else:
                self._handed.append(entry_id)
                messages.append(message)
        self.refresh()
        return messages

    def _message(self, entry_id: str, fields: dict[str, str] | None) -> InboxMessage | None:
        if not fields:
            return None  # deleted from the stream while pending
        try:
            entry = InboxEntry.model_validate(fields)
        except ValidationError as exc:
            log.warning(
                "%s entry %s is not an inbox entry of the contract (%s); acknowledged and "
                "skipped: %r",
                self.inbox_key,
                entry_id,
                exc.errors()[0]["msg"],
                fields,
            )
            return None
        if entry.kind == "redirect" and entry.escalation_id in self.redirected:
            log.info(
                "%s entry %s repeats the redirect of escalation %s, which request_approval "
                "already returned; acknowledged and not handed out again",
                self.inbox_key,
                entry_id,
                entry.escalation_id,
            )
            return None
        return InboxMessage(
            id=entry_id,
            kind=entry.kind,
            text=entry.text,
            author=entry.author,
            source=entry.source,
            at=entry.at,
            escalation_id=entry.escalation_id or None,
        )

    def closing_acks(self, *, took_last: bool) -> tuple[str, ...]:
        """What to acknowledge on close: the last batch only when the agent exited cleanly
        (after an exception it may not have acted on it, so a restart gets it again)."""
        if took_last:
            self.confirm_taken(refresh=False)
        return tuple(self._to_ack)

    # ------------------------------------------------------------------ approvals

    def note_outcome(self, outcome: ApprovalOutcome) -> None:
        if outcome.decision == "redirected":
            self.redirected.add(outcome.escalation_id)
            self.inbox_dirty = True  # its inbox copy is there: read it now, to skip it
            self.refresh()
