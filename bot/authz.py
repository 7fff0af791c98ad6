"""Who may do what: policy roles matched against Slack user ids and user-group members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.policy import Policy, PolicyHolder, Role, holder_of

SYSTEM_ACTORS = frozenset({"policy", "system"})
CLI_PREFIX = "cli:"


class GroupDirectory(Protocol):
    """Resolves a Slack user-group id (S…) to its members' user ids."""

    def members(self, group_id: str) -> frozenset[str]: ...


class DirectoryUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    why: str = ""


class Authorizer:
    def __init__(
        self, policy: Policy | PolicyHolder, directory: GroupDirectory | None = None
    ) -> None:
        self.policies = holder_of(policy)
        self.directory = directory

    def check(self, actor: str, role: Role | None) -> Verdict:
        if role is None or actor in SYSTEM_ACTORS:
            return Verdict(True)
        if actor.startswith(CLI_PREFIX):
            # The break-glass CLI runs with the database's and Redis's credentials: whoever
            # can run it already holds every power, so it is trusted and audited by name.
            return Verdict(True)
        members = self.policies.current.roles.members(role)
        if actor in members:
            return Verdict(True)
        groups = [member for member in members if member.startswith("S")]
        if groups and self.directory is not None:
            try:
                for group in groups:
                    if actor in self.directory.members(group):
                        return Verdict(True)
            except DirectoryUnavailable as exc:
                return Verdict(False, f"needs the {role} role; group membership unknown: {exc}")
        return Verdict(False, f"needs the {role} role")
