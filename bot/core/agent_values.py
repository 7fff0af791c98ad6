"""The agent's own values behind an escalation's placeholders (CONTRACTS §12): people
approve arguments that show `[email-1]`; `decision:{id}` carries the agent's value again.

The map lives in Redis (`redaction:{escalation_id}`), or with `store_raw: true` in the
database beside the raw escalation.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bot.control import ControlPlaneError
from bot.core.base import ServiceBase
from bot.db import raw_escalations
from bot.errors import ControlPlaneUnavailable, InvalidInput
from bot.logs import log_ids
from bot.records import EscalationRecord
from bot.redaction import PLACEHOLDER, UnknownPlaceholders, restore

log = logging.getLogger(__name__)


def mentions_placeholders(value: Any) -> bool:
    return PLACEHOLDER.search(json.dumps(value, ensure_ascii=False)) is not None


class AgentValues(ServiceBase):
    def _originals(self, escalation_id: str) -> dict[str, str]:
        with self.store.reading() as session:
            raw = raw_escalations.of(session, escalation_id)
        if raw is not None:
            return raw[1]
        try:
            return self.control.placeholders(escalation_id)
        except ControlPlaneError as exc:
            raise ControlPlaneUnavailable(
                f"the values behind the placeholders of {escalation_id} are in Redis, which "
                f"did not answer ({exc}); try again"
            ) from exc

    def _restored(self, escalation_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """Edited arguments with the agent's values back in; InvalidInput naming a
        placeholder this escalation never issued (or whose value is no longer kept)."""
        if not mentions_placeholders(args):
            return args
        kinds = self.policy.redaction.rules.kinds
        try:
            restored: dict[str, Any] = restore(args, self._originals(escalation_id), kinds)
        except UnknownPlaceholders as exc:
            raise InvalidInput(
                f"{', '.join(exc.missing)} {'is' if len(exc.missing) == 1 else 'are'} not "
                f"a value of escalation {escalation_id} (or no longer kept): write the value "
                "itself"
            ) from None
        return restored

    def _agent_args(self, escalation: EscalationRecord) -> dict[str, Any] | None:
        """The approved arguments as the agent must see them, for `decision:{id}`; the
        stored ones (placeholders and all) when the map is gone, with a warning."""
        args = escalation.edited_args
        if args is None or escalation.state != "approved":
            return None
        try:
            return self._restored(escalation.id, args)
        except (InvalidInput, ControlPlaneUnavailable) as exc:
            log.warning(
                "decision %s: edited arguments sent as stored: %s",
                escalation.id,
                exc,
                extra=log_ids(escalation_id=escalation.id, task_id=escalation.task_id),
            )
            return args
