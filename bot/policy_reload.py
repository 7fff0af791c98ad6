"""Live reload of the policy file: re-read when it changes (polled, so an editor's atomic
rename or a config-management push is seen too) and on SIGHUP. A file that does not
validate is refused with one line in the log and the previous policy stays in force."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from bot.core import EscalationService
from bot.errors import ConfigError
from bot.policy import parse_policy, policy_version

log = logging.getLogger("escbot.policy")
MISSING = "missing"

Signature = tuple[int, int, int] | None


def _signature(path: Path) -> Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class PolicyReloader:
    def __init__(self, path: Path | str, service: EscalationService, *, interval: float = 1.0):
        self.path = Path(path)
        self.service = service
        self.interval = interval
        self._poked = threading.Event()
        self._seen = _signature(self.path)

    def poke(self) -> None:
        """Read the file at the next turn, changed or not (SIGHUP)."""
        self._poked.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            poked = self._poked.wait(self.interval)
            self._poked.clear()
            signature = _signature(self.path)
            if poked or signature != self._seen:
                self._seen = signature
                try:
                    self.reload()
                except Exception:
                    log.exception("policy reload failed; the policy in force stays")

    def reload(self) -> str:
        """Read the file and put it in force if it is new and valid: "changed",
        "unchanged" or "refused"."""
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            why = f"ESCBOT_POLICY: cannot read {self.path}: {exc.strerror or exc}"
            return self._refuse(MISSING, why)
        version = policy_version(content)
        if version == self.service.policy.version:
            return "unchanged"
        try:
            policy = parse_policy(content, source=str(self.path))
        except ConfigError as exc:
            return self._refuse(version, exc.message)
        old = self.service.policy.version
        self.service.adopt_policy(policy)
        log.info("policy reloaded: %s replaced by %s", old, policy.version)
        return "changed"

    def _refuse(self, version: str, why: str) -> str:
        in_force = self.service.policy.version
        log.warning("policy file refused (%s); %s stays in force", why, in_force)
        self.service.refuse_policy(version, f"{why}; {in_force} stays in force")
        return "refused"
