"""What the listeners may use: the one service, the chat delivery, the policy, the clock;
and how a module-level listener is handed them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, utcnow
from bot.core import EscalationService
from bot.core.delivery import ChatDelivery
from handlers.answers import ANSWER_IN_ACK


@dataclass(frozen=True)
class Deps:
    service: EscalationService
    delivery: ChatDelivery
    clock: Clock = field(default=utcnow)
    # Runs work a listener hands over after its ack (the app's listener pool); by
    # default at once, in the caller's thread (listeners called directly, in tests).
    work: Callable[..., Any] = field(default=lambda fn, *args, **kwargs: fn(*args, **kwargs))
    # Seconds a command's ack waits for its answer (handlers/answers.py).
    answer_within: float = ANSWER_IN_ACK


@dataclass
class Registry:
    """What was registered, so a test can hold it against the manifest and the blocks."""

    commands: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)
    modal_callbacks: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)


def bound(listener: Callable[..., None], **values: Any) -> Callable[..., None]:
    """`listener` with keyword-only arguments (its `deps`, …) filled in. Bolt passes a
    listener the arguments it names, read from its signature; the bound ones are
    keyword-only, so Bolt leaves them alone. The name is kept for Bolt's logs."""
    partial = functools.partial(listener, **values)
    partial.__name__ = listener.__name__  # type: ignore[attr-defined]  # partials take attributes
    return partial
