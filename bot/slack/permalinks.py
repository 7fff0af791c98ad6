"""Messages' permalinks: formed as Slack forms them (the workspace's URL, the channel, the
ts without its dot), so a card needs no `chat.getPermalink`; asked for only when the
workspace's URL cannot be known."""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot.slack.client import slack_error
from bot.slack.outage import reported

log = logging.getLogger("bot.slack.worker")


class Permalinks:
    def __init__(self, client: WebClient, workspace_url: str | None = None) -> None:
        self.client = client
        self._workspace_url = workspace_url  # None: ask auth.test once

    def derived(self, channel: str, ts: str) -> str | None:
        """None when the workspace's URL is unknown (auth.test failed or gave none)."""
        if self._workspace_url is None:
            try:
                url = self.client.auth_test().get("url")
            except Exception as exc:
                if not reported(self.client, exc):
                    log.warning("no workspace URL (%s)", slack_error(exc))
                return None
            self._workspace_url = str(url) if url else ""
        if not self._workspace_url:
            return None
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    def asked(self, channel: str, ts: str) -> str | None:
        try:
            return self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        except Exception as exc:
            if not reported(self.client, exc):
                log.warning("no permalink for %s/%s (%s)", channel, ts, slack_error(exc))
            return None
