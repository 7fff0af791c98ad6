"""What the adapter tests share: an agent run in a thread (an asyncio one in its own loop),
and the bot's side driven from the test's thread (intake, decisions, kills, pauses)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.core import EscalationService
from bot.intake import Intake
from tests.agent.conftest import eventually, opened
from tests.conftest import OPERATOR

T = TypeVar("T")


class Running(Generic[T]):
    """`call()` in a thread: its result, or what it raised (TaskKilled included)."""

    def __init__(self, call: Callable[[], T]) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    @classmethod
    def async_(cls, make: Callable[[], Awaitable[T]]) -> Running[T]:
        async def run() -> T:
            return await make()

        return cls(lambda: asyncio.run(run()))

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self.value = call()
        except BaseException as exc:  # TaskKilled is a BaseException on purpose
            self.error = exc
        finally:
            self.finished.set()

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def result(self, intake: Intake, timeout: float = 15.0) -> T:
        """Keep the bot's intake reading until the run ends; its value, or raise its error."""
        eventually(lambda: (intake.poll_once(block_ms=20), self.done)[1], timeout=timeout)
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


def decide(
    intake: Intake,
    service: EscalationService,
    escalation_id: str,
    verdict: str,
    **options: object,
) -> None:
    """The escalation reaches the bot, and an operator decides it (the one service call)."""
    opened(intake, service, escalation_id)
    service.decide(escalation_id, OPERATOR, verdict, **options)  # type: ignore[arg-type]
