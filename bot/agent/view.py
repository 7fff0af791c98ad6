"""What both guards share outside the core: their set-up and the view they show."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.contracts import (
    ControlValue,
)
from bot.keys import KeyNames

from .core import GuardCore
from .payloads import (
    FailMode,
    client_name,
    resolve_settings,
)


class GuardView:
    """What both guards share outside the core: their set-up, and what they show of their
    view (read without a lock: each is one attribute)."""

    _core: GuardCore

    def _setup(
        self,
        task_id: str,
        connect: Callable[..., Any],
        *,
        redis: Any,
        url: str | None,
        prefix: str | None,
        agent: str,
        consumer: str | None,
        on_unreachable: FailMode,
        reread_interval: float,
        push: bool,
        socket_timeout: float,
    ) -> None:
        """The guards' constructor arguments, checked and kept; `connect` makes the client
        (sync or asyncio) when none is shared."""
        url, prefix = resolve_settings(url, prefix)
        self._core = GuardCore(
            task_id,
            prefix=prefix,
            agent=agent,
            consumer=consumer,
            on_unreachable=on_unreachable,
            reread_interval=reread_interval,
        )
        self._own_client = redis is None
        self._redis = redis or connect(
            url, timeout=socket_timeout, name=client_name(task_id, self._core.consumer)
        )
        self._push = push
        self._start_timeout = 2 * socket_timeout + 1.0
        self._next_sync = 0.0
        self._failures = 0
        self._closed = False

    @property
    def task_id(self) -> str:
        return self._core.task_id

    @property
    def keys(self) -> KeyNames:
        return self._core.keys

    @property
    def control_reachable(self) -> bool:
        """The keys were read successfully, recently enough to be trusted."""
        return self._core.reachable and time.monotonic() < self._core.fresh_until

    @property
    def killed(self) -> ControlValue | None:
        """The kill in force (this task's, else `kill:all`), as last read."""
        return self._core.killed or self._core.killed_all

    @property
    def paused(self) -> ControlValue | None:
        return self._core.paused
