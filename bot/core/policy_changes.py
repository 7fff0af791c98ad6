"""Policy changes: a new file put in force (and recorded once, whichever replica saw it
first), a bad one refused (recorded once, and told to the first tier's channel)."""

from __future__ import annotations

from bot.core.base import ServiceBase
from bot.db import audit, policy_state
from bot.policy import Policy
from bot.records import AuditAction


class PolicyChanges(ServiceBase):
    def adopt_policy(self, new: Policy) -> str | None:
        """Put `new` in force. Escalations already open keep what they were given (their
        ladder, deadlines and quorum). Returns the version it replaced, when it is this
        process that records the change."""
        old = self.policies.swap(new)
        now = self.clock()
        with self.store.transaction() as session:
            replaced = policy_state.adopt(session, new.version, now)
            if replaced is None:
                return None
            audit.append(
                session,
                at=now,
                actor="system",
                action=AuditAction.POLICY_CHANGED,
                policy_version=new.version,
                reason=f"policy {replaced} replaced by {new.version}",
                detail={"old": replaced, "new": new.version, "was_in_force_here": old.version},
            )
        return replaced

    def refuse_policy(self, version: str, why: str) -> bool:
        """A policy file that does not validate: the one in force stays. True when this is
        the first time that file is refused (the refusal is then audited and announced)."""
        now = self.clock()
        in_force = self.policy.version
        with self.store.transaction() as session:
            if not policy_state.refuse(session, version, in_force, now):
                return False
            audit.append(
                session,
                at=now,
                actor="system",
                action=AuditAction.POLICY_REFUSED,
                policy_version=in_force,
                reason=why,
                detail={"refused": version, "in_force": in_force},
            )
        return True
