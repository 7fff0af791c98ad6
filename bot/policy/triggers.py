"""Automated triggers (CONTRACTS §9): a signal's value, count or sum over a sliding window
compared with a threshold; when it holds, the bot pauses, kills and escalates on its own.

```yaml
triggers:
  - name: cost-spike
    signal: cost
    sum_over: 5m          # or count_over: 10m; neither: each single value
    above: 20             # or at_least: N, or below: X
    scope: task           # or agent: all tasks of that agent together
    then: [pause, escalate]
    severity: high
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.policy.fields import Duration, Severity, check_name, format_duration

TriggerAction = Literal["escalate", "pause", "kill"]
Mode = Literal["sum", "count", "value"]
Comparator = Literal["above", "at_least", "below"]
COMPARE_WORDS = {"above": "above", "at_least": "at least", "below": "below"}
MAX_WINDOW = timedelta(hours=24)
BUCKETS = 30  # a window slides in steps of 1/30 of its length


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    signal: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    sum_over: Duration | None = None
    count_over: Duration | None = None
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    scope: Literal["task", "agent"] = "task"
    then: list[TriggerAction] = Field(min_length=1)
    severity: Severity = "high"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "trigger")

    @field_validator("then")
    @classmethod
    def _distinct(cls, value: list[TriggerAction]) -> list[TriggerAction]:
        if len(set(value)) != len(value):
            raise ValueError("lists an action twice")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Trigger:
        given = [name for name in ("above", "at_least", "below") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above, at_least or below")
        if self.sum_over is not None and self.count_over is not None:
            raise ValueError("give sum_over or count_over, not both")
        window = self.window
        if window is not None and window > MAX_WINDOW:
            raise ValueError(f"a window of at most {format_duration(MAX_WINDOW)}")
        return self

    @property
    def mode(self) -> Mode:
        if self.sum_over is not None:
            return "sum"
        if self.count_over is not None:
            return "count"
        return "value"

    @property
    def window(self) -> timedelta | None:
        return self.sum_over or self.count_over

    @property
    def comparator(self) -> Comparator:
        if self.above is not None:
            return "above"
        return "at_least" if self.at_least is not None else "below"

    @property
    def threshold(self) -> float:
        value = {"above": self.above, "at_least": self.at_least, "below": self.below}
        found = value[self.comparator]
        assert found is not None  # one of them is given (checked above)
        return found

    def holds(self, value: float) -> bool:
        if self.comparator == "above":
            return value > self.threshold
        if self.comparator == "at_least":
            return value >= self.threshold
        return value < self.threshold

    def measure(self) -> str:
        """What is compared: `cost summed over 5m`, `failure counted over 10m`, `confidence`."""
        window = self.window
        if self.mode == "sum" and window is not None:
            return f"{self.signal} summed over {format_duration(window)}"
        if self.mode == "count" and window is not None:
            return f"{self.signal} signals counted over {format_duration(window)}"
        return self.signal

    def describe(self, value: float) -> str:
        """`cost summed over 5m is 23.5, above 20`."""
        return f"{self.measure()} is {value:g}, {COMPARE_WORDS[self.comparator]} {self.threshold:g}"
