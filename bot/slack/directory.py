"""User-group membership from Slack (usergroups.users.list), cached for a few minutes."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.authz import DirectoryUnavailable


class SlackGroupDirectory:
    def __init__(self, client: WebClient, ttl_seconds: float = 300.0) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group_id: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(group_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else str(exc)
            if cached is not None:
                return cached[1]  # stale beats nothing while Slack hiccups
            raise DirectoryUnavailable(f"Slack answered {error} for group {group_id}") from exc
        except Exception as exc:
            if cached is not None:
                return cached[1]
            raise DirectoryUnavailable(f"Slack unreachable ({exc})") from exc
        members = frozenset(response.get("users") or [])
        with self._lock:
            self._cache[group_id] = (now, members)
        return members
