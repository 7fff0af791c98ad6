"""What both guards share outside the core: their set-up and the view they show."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from escbot_agent.contracts import ControlValue
from escbot_agent.keys import KeyNames

from .core import GuardCore
from .fleet import Heartbeat, failure_detail
from .payloads import FailMode, client_name, describe, resolve_settings

log = logging.getLogger("escbot_agent")


class GuardView:
    """What both guards share outside the core: their set-up, and what they show of their
    view (read without a lock: each is one attribute)."""

    _core: GuardCore
    _heartbeat: Heartbeat | None

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
        task_type: str | None,
        heartbeat: bool,
        heartbeat_interval: float,
        heartbeat_ttl: float,
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
            task_type=task_type,
        )
        core = self._core
        self._heartbeat = (
            Heartbeat(
                core.keys,
                core.task_id,
                core.agent,
                core.task_type,
                interval=heartbeat_interval,
                ttl=heartbeat_ttl,
            )
            if heartbeat
            else None
        )
        self._beat_refused = False
        self._reported: BaseException | None = None  # the failure last reported
        self._url = url
        self._given = redis  # a client of the agent's: the process's subscriber uses it too
        self._commands: Any = None  # the subscriber's client, once started
        self._standalone: Any = None  # a client of its own, only for a use before start()
        self._connect = connect
        self._socket_timeout = socket_timeout
        self._push = push
        self._start_timeout = 2 * socket_timeout + 1.0
        self._closed = False

    def _client(self) -> Any:
        """The client for this guard's commands: the process's shared one once started."""
        if self._commands is not None:
            return self._commands
        if self._given is not None:
            return self._given
        if self._standalone is None:
            name = client_name(self.task_id, self._core.consumer)
            self._standalone = self._connect(self._url, timeout=self._socket_timeout, name=name)
        return self._standalone

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
    def agent(self) -> str:
        return self._core.agent

    @property
    def task_type(self) -> str | None:
        return self._core.task_type

    @property
    def killed(self) -> ControlValue | None:
        """The kill in force (this task's, else its agent's, else `kill:all`), as last read."""
        core = self._core
        return core.killed or core.killed_agent or core.killed_all

    @property
    def paused(self) -> ControlValue | None:
        """The pause in force (this task's, else its agent's), as last read."""
        return self._core.pause_in_force

    # ------------------------------------------------------------------ heartbeat, failures

    def _beat_answered(self, error: BaseException | None) -> None:
        """Redis answered a heartbeat; `error` when it refused it (a key of another type
        at `task:{task_id}`): said once, and the agent goes on."""
        if error is None:
            self._beat_refused = False
        elif not self._beat_refused:
            self._beat_refused = True
            key = self._heartbeat.key if self._heartbeat else "the heartbeat"
            log.warning(
                "%s was not written (%s); the fleet does not show task %s until it is",
                key,
                describe(error),
                self.task_id,
            )

    def _failure_to_report(self, exc: BaseException | None) -> str | None:
        """The detail of the failure signal `exc` makes as it leaves the guard, or None.
        Only an ordinary exception is a failure: TaskKilled, KeyboardInterrupt, SystemExit
        and cancellations are BaseExceptions, stops rather than failures. None too when it
        was reported already (by `run()`, then again by the `async with`) or the guard is
        closed."""
        if not isinstance(exc, Exception) or exc is self._reported or self._closed:
            return None
        self._reported = exc
        return failure_detail(exc)

    def _failure_not_reported(self, exc: BaseException, error: BaseException) -> None:
        log.warning(
            "task %s failed (%s); the failure signal was not written: %s",
            self.task_id,
            failure_detail(exc),
            describe(error),
        )
