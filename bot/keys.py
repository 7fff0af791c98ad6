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

    @property
    def escalations(self) -> str:
        return f"{self.prefix}escalations"

    @property
    def agent_events(self) -> str:
        return f"{self.prefix}agent-events"

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}outcomes"

    @property
    def control(self) -> str:
        return f"{self.prefix}control"
