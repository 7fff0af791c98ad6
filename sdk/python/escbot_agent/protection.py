"""`async with guard.protect():` a kill cancels the block (the asyncio guard)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import TaskKilled

if TYPE_CHECKING:
    from .aio import AsyncTaskGuard


class Protection:
    """`async with guard.protect():` a kill cancels the task running the block, and the
    block ends with TaskKilled. A cancellation from elsewhere passes through unchanged."""

    def __init__(self, guard: AsyncTaskGuard) -> None:
        self._guard = guard
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self.error: TaskKilled | None = None

    async def __aenter__(self) -> Protection:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("protect() must be used inside an asyncio task")
        try:
            self._guard._core.check_killed()
        except TaskKilled:
            await self._guard._report("killed")
            raise
        self._task = task
        self._cancelling = task.cancelling()
        self._guard._protections.add(self)
        return self

    def fire(self, error: TaskKilled) -> bool:
        """Cancel the block's task (once); True when this call did."""
        if self.error is None and self._task is not None:
            self.error = error
            self._task.cancel(str(error))
            return True
        return False

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._guard._protections.discard(self)
        if self.error is None or self._task is None:
            return
        cancelled = isinstance(exc, asyncio.CancelledError)
        if self._task.uncancel() > self._cancelling and cancelled:
            return  # someone else cancelled the task too: that cancellation wins
        raise self.error from (None if cancelled else exc)
