"""The policy in force. A reload swaps it whole; a reader takes `current` once for what it
is doing, so one request never sees half of one policy and half of another."""

from __future__ import annotations

from bot.policy.model import Policy


class PolicyHolder:
    def __init__(self, policy: Policy) -> None:
        self.current = policy

    def swap(self, policy: Policy) -> Policy:
        """Put `policy` in force; the one it replaces."""
        old, self.current = self.current, policy
        return old


def holder_of(policy: Policy | PolicyHolder) -> PolicyHolder:
    return policy if isinstance(policy, PolicyHolder) else PolicyHolder(policy)
