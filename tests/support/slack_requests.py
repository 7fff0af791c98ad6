"""Requests from Slack to the bot, built and signed as Slack builds them, sent over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import requests

TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake-team"
API_APP_ID = "A0FAKE"
BOT_USER_ID = "UBOTFAKE"
BOT_ID = "BBOTFAKE"
VERIFICATION_TOKEN = "fake-verification-token"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

JsonDict = dict[str, Any]


class SendOptions(TypedDict, total=False):
    """Per-request overrides: a stale `timestamp`, a forged `signature`, extra `headers`."""

    timestamp: int | None
    signature: str | None
    headers: dict[str, str] | None


def random_trigger_id() -> str:
    return (
        f"{random.randint(1000, 9999999)}.{random.randint(1000, 9999999)}.{secrets.token_hex(16)}"
    )


def random_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5).upper()


_ts_lock = threading.Lock()
_last_micros = 0


def _now_ts() -> str:
    """A Slack-style ts for now, unique within this process."""
    global _last_micros
    with _ts_lock:
        _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
        micros = _last_micros
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _user(user_id: str, user_name: str | None) -> JsonDict:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


class SlackRequests:
    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        response_urls: Callable[[], str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """`response_urls` makes a fresh response URL (e.g. `FakeSlack.response_url`).

        Without it, payloads carry a URL on a closed local port, so a bot that answers
        through it fails loudly instead of reaching the internet.
        """
        self.base_url = base_url
        self.signing_secret = signing_secret
        self.response_urls = response_urls
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment between test and bot
        # Room for the concurrent-click tests' connections.
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SlackRequests:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ signing and sending

    def sign(self, body: bytes, timestamp: int) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return f"v0={digest}"

    def signed_headers(
        self, body: bytes, content_type: str, **overrides: Unpack[SendOptions]
    ) -> dict[str, str]:
        timestamp = overrides.get("timestamp")
        if timestamp is None:
            timestamp = int(time.time())
        signature = overrides.get("signature")
        if signature is None:
            signature = self.sign(body, timestamp)
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "Accept": "application/json,*/*",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
        }
        headers.update(overrides.get("headers") or {})
        return headers

    def post(
        self, body: bytes, content_type: str, **overrides: Unpack[SendOptions]
    ) -> requests.Response:
        headers = self.signed_headers(body, content_type, **overrides)
        return self.session.post(self.base_url, data=body, headers=headers, timeout=self.timeout)

    def post_form(
        self, fields: Mapping[str, str], **overrides: Unpack[SendOptions]
    ) -> requests.Response:
        return self.post(urlencode(fields).encode(), FORM, **overrides)

    def post_json(self, body: JsonDict, **overrides: Unpack[SendOptions]) -> requests.Response:
        return self.post(json.dumps(body).encode(), JSON, **overrides)

    def _response_url(self, given: str | None) -> str:
        if given is not None:
            return given
        if self.response_urls is not None:
            return self.response_urls()
        return f"http://127.0.0.1:9/response/{secrets.token_hex(8)}"

    # ------------------------------------------------------------ slash commands

    def slash_command_form(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str = "C0TRIAGE",
        command: str = "/agent",
        team_id: str = TEAM_ID,
        response_url: str | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
    ) -> dict[str, str]:
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_id.lower(),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._response_url(response_url),
            "trigger_id": trigger_id or random_trigger_id(),
        }

    def slash_command(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str = "C0TRIAGE",
        command: str = "/agent",
        team_id: str = TEAM_ID,
        response_url: str | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
        **overrides: Unpack[SendOptions],
    ) -> requests.Response:
        fields = self.slash_command_form(
            text,
            user_id=user_id,
            channel_id=channel_id,
            command=command,
            team_id=team_id,
            response_url=response_url,
            trigger_id=trigger_id,
            user_name=user_name,
        )
        return self.post_form(fields, **overrides)

    # ------------------------------------------------------------ interactivity

    def interaction(self, payload: JsonDict, **overrides: Unpack[SendOptions]) -> requests.Response:
        return self.post_form({"payload": json.dumps(payload)}, **overrides)

    def block_actions_payload(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        block_id: str = "b",
        trigger_id: str | None = None,
        response_url: str | None = None,
        message_blocks: list[JsonDict] | None = None,
        thread_ts: str | None = None,
    ) -> JsonDict:
        action_ts = _now_ts()
        message: JsonDict = {
            "type": "message",
            "text": "",
            "ts": message_ts,
            "bot_id": BOT_ID,
            "app_id": API_APP_ID,
            "user": BOT_USER_ID,
            "team": TEAM_ID,
            "blocks": message_blocks or [],
        }
        container: JsonDict = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
            container["thread_ts"] = thread_ts
        return {
            "type": "block_actions",
            "user": _user(user_id, None),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": trigger_id or random_trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_id.lower()},
            "message": message,
            "state": {"values": {}},
            "response_url": self._response_url(response_url),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": action_id, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": action_ts,
                }
            ],
        }

    def click(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        block_id: str = "b",
        trigger_id: str | None = None,
        response_url: str | None = None,
        message_blocks: list[JsonDict] | None = None,
        thread_ts: str | None = None,
        **overrides: Unpack[SendOptions],
    ) -> requests.Response:
        payload = self.block_actions_payload(
            action_id=action_id,
            value=value,
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            block_id=block_id,
            trigger_id=trigger_id,
            response_url=response_url,
            message_blocks=message_blocks,
            thread_ts=thread_ts,
        )
        return self.interaction(payload, **overrides)

    def view_submission_payload(
        self,
        *,
        callback_id: str,
        user_id: str,
        values: dict[str, dict[str, JsonDict]],
        private_metadata: str = "",
        view_id: str | None = None,
    ) -> JsonDict:
        view_id = view_id or random_id("V")
        view = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": "Modal", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": API_APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": _user(user_id, None),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": random_trigger_id(),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def submit_view(
        self,
        *,
        callback_id: str,
        user_id: str,
        values: dict[str, dict[str, JsonDict]],
        private_metadata: str = "",
        view_id: str | None = None,
        **overrides: Unpack[SendOptions],
    ) -> requests.Response:
        payload = self.view_submission_payload(
            callback_id=callback_id,
            user_id=user_id,
            values=values,
            private_metadata=private_metadata,
            view_id=view_id,
        )
        return self.interaction(payload, **overrides)

    # ------------------------------------------------------------ Events API

    def event_payload(
        self,
        event: JsonDict,
        *,
        event_id: str | None = None,
        team_id: str = TEAM_ID,
        api_app_id: str = API_APP_ID,
    ) -> JsonDict:
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "api_app_id": api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or random_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": secrets.token_urlsafe(24),
        }

    def event(
        self,
        event: JsonDict,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **overrides: Unpack[SendOptions],
    ) -> requests.Response:
        headers = dict(overrides.get("headers") or {})
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        overrides["headers"] = headers
        return self.post_json(self.event_payload(event, event_id=event_id), **overrides)

    @staticmethod
    def message_event(
        *,
        text: str,
        user: str | None,
        channel: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
    ) -> JsonDict:
        """A `message` event as delivered for `message.channels`; `user=None` omits it."""
        ts = ts or _now_ts()
        event: JsonDict = {"type": "message", "text": text, "ts": ts}
        if subtype is not None:
            event["subtype"] = subtype
        if user is not None:
            event["user"] = user
        if bot_id is not None:
            event["bot_id"] = bot_id
            event["app_id"] = API_APP_ID
        else:
            event["client_msg_id"] = secrets.token_hex(16)
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        event.update(
            {"team": TEAM_ID, "channel": channel, "event_ts": ts, "channel_type": "channel"}
        )
        return event

    def url_verification(
        self, challenge: str, **overrides: Unpack[SendOptions]
    ) -> requests.Response:
        body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.post_json(body, **overrides)
