"""Names of the Redis keys, streams and channel of the control plane (CONTRACTS §2)."""

from __future__ import annotations

from dataclasses import dataclass

ALL = "all"


@dataclass(frozen=True)
class KeyNames:
    prefix: str = ""

    def kill(self, task_id: str) -> str:
        return f"{self.prefix}kill:{task_id}"

    @property
    def kill_all(self) -> str:
        return f"{self.prefix}kill:{ALL}"

    def pause(self, task_id: str) -> str:
        return f"{self.prefix}pause:{task_id}"

    def inbox(self, task_id: str) -> str:
        return f"{self.prefix}inbox:{task_id}"

    def decision(self, escalation_id: str) -> str:
        return f"{self.prefix}decision:{escalation_id}"

    def redaction(self, escalation_id: str) -> str:
        """A hash: placeholder → the value it replaced, for one escalation (CONTRACTS §12)."""
        return f"{self.prefix}redaction:{escalation_id}"

    @property
    def escalations(self) -> str:
        return f"{self.prefix}escalations"

    @property
    def agent_events(self) -> str:
        return f"{self.prefix}agent-events"

    def kill_agent(self, agent: str) -> str:
        return f"{self.prefix}kill:agent:{agent}"

    def pause_agent(self, agent: str) -> str:
        return f"{self.prefix}pause:agent:{agent}"

    def task(self, task_id: str) -> str:
        """The hash a running task's guard keeps fresh (CONTRACTS §10)."""
        return f"{self.prefix}task:{task_id}"

    @property
    def tasks(self) -> str:
        """Sorted set: task id → when its guard was last seen (epoch seconds)."""
        return f"{self.prefix}tasks"

    @property
    def tasks_ended(self) -> str:
        """Sorted set: task id → when its guard closed (a task that ended is not lost)."""
        return f"{self.prefix}tasks:ended"

    @property
    def signals(self) -> str:
        return f"{self.prefix}agent-signals"

    def trigger_window(self, trigger: str, subject: str) -> str:
        """The bot's own: a trigger's sliding window for one task or agent (a hash of
        time buckets)."""
        return f"{self.prefix}trigger:{trigger}:{subject}:window"

    def trigger_fired(self, trigger: str, subject: str) -> str:
        """The bot's own: set when the trigger fired for the subject, until released."""
        return f"{self.prefix}trigger:{trigger}:{subject}:fired"

    @property
    def triggers_pending(self) -> str:
        """The bot's own: firings seen in Redis whose actions are not yet recorded."""
        return f"{self.prefix}triggers:pending"

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}outcomes"

    def outcome_marker(self, outcome_id: str) -> str:
        """The bot's own: set once the `outcomes` entry `outcome_id` is written, so a
        replay of it adds nothing."""
        return f"{self.prefix}outcomes:written:{outcome_id}"

    @property
    def control(self) -> str:
        return f"{self.prefix}control"

    def announcements(self, key: str) -> str:
        """The channel of one key's announcements, `{prefix}control:{key}` (`key` without
        the prefix): its new value, for the processes that hold that key's task."""
        return f"{self.prefix}control:{key}"
