"""What the sandbox's page does, as the signed HTTP requests Slack sends the bot: slash
commands, `block_actions`, `view_submission` and `message` events, in Slack's shapes,
signed with the bot's signing secret and posted to its `/slack/events`."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bot.sandbox.slack_records import APP_ID, BOT_USER_ID, TEAM_ID

TEAM_DOMAIN = "sandbox"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """The bot's HTTP answer: status and body (the ack's payload, when it has one)."""

    status: int
    body: str

    def json(self) -> JsonDict | None:
        try:
            value = json.loads(self.body) if self.body.strip() else None
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None


def trigger_id() -> str:
    return f"{secrets.randbelow(10**7)}.{secrets.randbelow(10**7)}.{secrets.token_hex(16)}"


def _user(user_id: str, name: str) -> JsonDict:
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


class SignedSender:
    def __init__(self, url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = signing_secret.encode()
        self.timeout = timeout
        # Straight to the bot on 127.0.0.1: no proxy from the environment in between.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def headers(self, body: bytes, content_type: str) -> dict[str, str]:
        timestamp = str(int(time.time()))
        base = b"v0:" + timestamp.encode() + b":" + body
        signature = "v0=" + hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        return {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        }

    def post(self, body: bytes, content_type: str) -> Answer:
        request = urllib.request.Request(
            self.url, data=body, headers=self.headers(body, content_type), method="POST"
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Answer(response.status, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode("utf-8", "replace"))
        except OSError as exc:
            return Answer(0, f"the bot did not answer: {exc}")

    def slash_command(
        self,
        text: str,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        response_url: str,
        trigger: str,
    ) -> Answer:
        fields = {
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_id.lower(),
            "user_id": user_id,
            "user_name": user_name,
            "command": "/agent",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger,
        }
        return self.post(urlencode(fields).encode(), FORM)

    def interaction(self, payload: JsonDict) -> Answer:
        return self.post(urlencode({"payload": json.dumps(payload)}).encode(), FORM)

    def block_actions(
        self,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        message: JsonDict,
        action: JsonDict,
        response_url: str,
        trigger: str,
    ) -> Answer:
        container: JsonDict = {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        payload: JsonDict = {
            "type": "block_actions",
            "user": _user(user_id, user_name),
            "api_app_id": APP_ID,
            "container": container,
            "trigger_id": trigger,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_id.lower()},
            "message": message,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
        }
        return self.interaction(payload)

    def view_submission(
        self, *, user_id: str, user_name: str, view: JsonDict, values: JsonDict
    ) -> Answer:
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": _user(user_id, user_name),
            "api_app_id": APP_ID,
            "trigger_id": trigger_id(),
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self.interaction(payload)

    def message_event(
        self, *, user_id: str, channel_id: str, text: str, ts: str, thread_ts: str | None
    ) -> Answer:
        event: JsonDict = {
            "type": "message",
            "text": text,
            "user": user_id,
            "ts": ts,
            "client_msg_id": secrets.token_hex(16),
            "team": TEAM_ID,
            "channel": channel_id,
            "event_ts": ts,
            "channel_type": "channel",
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        body = {
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": secrets.token_urlsafe(24),
        }
        return self.post(json.dumps(body).encode(), JSON)


__all__ = ["Answer", "SignedSender", "trigger_id"]
