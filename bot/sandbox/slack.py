"""The sandbox's Slack: the fake Web API, remembering which click opened each modal, so
the page shows a modal to the person whose click (its `trigger_id`) opened it."""

from __future__ import annotations

from typing import Any

from bot.sandbox.fake_slack import FakeSlack
from bot.sandbox.slack_records import JsonDict, Params


class SandboxSlack(FakeSlack):
    def __init__(self, **options: Any) -> None:
        self._view_triggers: dict[str, str] = {}
        super().__init__(**options)

    def _views_open(self, params: Params) -> JsonDict:
        answer = super()._views_open(params)
        with self._changed:
            self._view_triggers[answer["view"]["id"]] = str(params.get("trigger_id"))
        return answer

    def view_trigger(self, view_id: str) -> str | None:
        """The `trigger_id` that opened the view (or the root view it replaced)."""
        with self._changed:
            return self._view_triggers.get(view_id)
