"""What the listeners may use: the one service, read-only lookups, the policy, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock, utcnow
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from bot.policy import Policy


@dataclass(frozen=True)
class Deps:
    service: EscalationService
    delivery: ChatDelivery
    policy: Policy
    clock: Clock = field(default=utcnow)


@dataclass
class Registry:
    """What was registered, so a test can hold it against the manifest and the blocks."""

    commands: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
