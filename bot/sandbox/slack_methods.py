"""The Web API methods the fake Slack answers (chat, reactions, views, users, groups) and
the posts to response URLs: Slack's behaviour, over the state `FakeSlack` keeps."""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time

from bot.sandbox.block_checks import _problem, blocks_problems, view_problems
from bot.sandbox.slack_records import (
    APP_ID,
    APP_TOKEN_METHODS,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    MESSAGE_BLOCKS_MAX,
    MESSAGE_TEXT_MAX,
    TEAM_ID,
    TEAM_NAME,
    WORKSPACE_URL,
    Ephemeral,
    JsonDict,
    Message,
    Params,
    ResponsePost,
    SlackError,
    _Reply,
    _ResponseTarget,
)
from bot.sandbox.slack_wire import _format_ts, _require, _string


class SlackWebMethods:
    """Mixed into FakeSlack, which owns this state (`reset` sets it)."""

    groups: dict[str, list[str]]
    channels: set[str] | None
    socket_mode_url: str | None
    _changed: threading.Condition
    _messages: dict[tuple[str, str], Message]
    _ephemerals: list[Ephemeral]
    _views: dict[str, JsonDict]
    _external_ids: dict[str, str]
    _expired_triggers: set[str]
    _used_triggers: set[str]
    _response_targets: dict[str, _ResponseTarget]
    _response_posts: list[ResponsePost]
    _last_micros: int
    _view_counter: int
    valid_tokens: set[str] | None

    def _next_ts(self) -> str:
        with self._changed:
            micros = max(time.time_ns() // 1000, self._last_micros + 1)
            self._last_micros = micros
            return _format_ts(micros)

    def _channel(self, params: Params) -> str:
        channel = _require(params, "channel", "channel_not_found")
        if self.channels is not None and channel not in self.channels:
            raise SlackError("channel_not_found")
        return channel

    def _content(
        self, params: Params
    ) -> tuple[str | None, list[JsonDict] | None, list[JsonDict] | None]:
        text = _string(params, "text")
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            raise SlackError("msg_too_long")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            problems = blocks_problems(blocks, limit=MESSAGE_BLOCKS_MAX, pointer="/blocks")
            if problems:
                raise SlackError("invalid_blocks", problems)
        if attachments is not None and not isinstance(attachments, list):
            raise SlackError("invalid_attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        return text, blocks, attachments

    def _stored(self, channel: str, ts: str) -> Message:
        message = self._messages.get((channel, ts))
        if message is None:
            raise SlackError("message_not_found")
        return message

    # ------------------------------------------------------------ Web API methods

    def _apps_connections_open(self, params: Params) -> JsonDict:
        if self.socket_mode_url is None:
            raise SlackError("access_denied")  # Socket Mode is not turned on
        return {"url": self.socket_mode_url}

    def _auth_test(self, params: Params) -> JsonDict:
        return {
            "url": WORKSPACE_URL,
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        text, blocks, attachments = self._content(params)
        thread_ts = _string(params, "thread_ts")
        with self._changed:
            if thread_ts is not None:
                parent = self._messages.get((channel, thread_ts))
                if parent is None:
                    raise SlackError("thread_not_found")
                thread_ts = parent.thread_ts or parent.ts
                root = self._messages[(channel, thread_ts)]
                root.thread_ts = thread_ts
                root.reply_count += 1
            message = Message(
                channel,
                self._next_ts(),
                text or "",
                blocks or [],
                thread_ts=thread_ts,
                attachments=attachments or [],
            )
            self._messages[(channel, message.ts)] = message
            return {"channel": channel, "ts": message.ts, "message": message.to_slack()}

    def _chat_update(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        ts = _require(params, "ts", "message_not_found")
        text, blocks, attachments = self._content(params)
        with self._changed:
            message = self._stored(channel, ts)
            if message.bot_id != BOT_ID:
                raise SlackError("cant_update_message")
            if text is not None:
                message.text = text
            if blocks is not None:
                message.blocks = blocks
            if attachments is not None:
                message.attachments = attachments
            message.edited = True
            updated = message.to_slack()
        return {"channel": channel, "ts": ts, "text": updated["text"], "message": updated}

    def _chat_post_ephemeral(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        user = _require(params, "user", "user_not_found")
        text, blocks, _ = self._content(params)
        ephemeral = Ephemeral(
            channel, user, self._next_ts(), text or "", blocks or [], _string(params, "thread_ts")
        )
        with self._changed:
            self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.message_ts}

    def _chat_get_permalink(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        ts = _require(params, "message_ts", "message_not_found")
        with self._changed:
            message = self._stored(channel, ts)
        permalink = f"https://fake-slack.test/archives/{channel}/p{ts.replace('.', '')}"
        if message.thread_ts is not None and message.thread_ts != ts:
            permalink += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": permalink}

    def _reactions_add(self, params: Params) -> JsonDict:
        channel = self._channel(params)
        ts = _require(params, "timestamp", "no_item_specified")
        name = _require(params, "name", "invalid_name")
        with self._changed:
            message = self._stored(channel, ts)
            if name in message.reactions:
                raise SlackError("already_reacted")
            message.reactions.append(name)
        return {}

    def _usergroups_users_list(self, params: Params) -> JsonDict:
        usergroup = _require(params, "usergroup", "no_such_subteam")
        users = self.groups.get(usergroup)
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}

    def _users_info(self, params: Params) -> JsonDict:
        user = _require(params, "user", "user_not_found")
        if user[0] not in "UW" or not user.isalnum():
            raise SlackError("user_not_found")
        name = BOT_NAME if user == BOT_USER_ID else user.lower()
        return {
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": name,
                "real_name": f"Fake {name}",
                "deleted": False,
                "is_bot": user == BOT_USER_ID,
                "profile": {"real_name": f"Fake {name}", "display_name": name},
            }
        }

    # ------------------------------------------------------------ views

    def _use_trigger(self, params: Params) -> None:
        trigger_id = _string(params, "trigger_id")
        if trigger_id is None:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        with self._changed:
            if trigger_id in self._expired_triggers:
                raise SlackError("expired_trigger_id")
            if trigger_id in self._used_triggers:
                raise SlackError("exchanged_trigger_id")
            self._used_triggers.add(trigger_id)

    def _valid_view(self, params: Params) -> JsonDict:
        view = params.get("view")
        if view is None:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: view"])
        problems = view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", problems)
        valid: JsonDict = view
        return valid

    def _store_view(self, view: JsonDict, previous: JsonDict | None = None) -> JsonDict:
        with self._changed:
            if previous is None:
                self._view_counter += 1
                view_id = f"V{self._view_counter:010d}"
            else:
                view_id = previous["id"]
            external_id = view.get("external_id") or (previous or {}).get("external_id", "")
            owner = self._external_ids.get(external_id) if external_id else None
            if owner is not None and owner != view_id:
                raise SlackError("duplicate_external_id")
            stored = {
                **view,
                "id": view_id,
                "team_id": TEAM_ID,
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "external_id": external_id,
                "root_view_id": (previous or {}).get("root_view_id", view_id),
                "previous_view_id": None,
                "app_id": APP_ID,
                "app_installed_team_id": TEAM_ID,
                "bot_id": BOT_ID,
                "clear_on_close": bool(view.get("clear_on_close", False)),
                "notify_on_close": bool(view.get("notify_on_close", False)),
            }
            self._views[view_id] = stored
            if external_id:
                self._external_ids[external_id] = view_id
            return {"view": copy.deepcopy(stored)}

    def _views_open(self, params: Params) -> JsonDict:
        view = self._valid_view(params)
        self._use_trigger(params)
        return self._store_view(view)

    def _views_push(self, params: Params) -> JsonDict:
        return self._views_open(params)

    def _views_update(self, params: Params) -> JsonDict:
        view_id = _string(params, "view_id")
        external_id = _string(params, "external_id")
        if view_id is None and external_id is None:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: view_id"])
        view = self._valid_view(params)
        with self._changed:
            if view_id is None:
                view_id = self._external_ids.get(external_id or "")
            previous = self._views.get(view_id or "")
            if previous is None:
                raise SlackError("not_found")
            expected_hash = _string(params, "hash")
            if expected_hash is not None and expected_hash != previous["hash"]:
                raise SlackError("hash_conflict")
            return self._store_view(view, previous)

    # ------------------------------------------------------------ response URL posts

    def _response(self, response_id: str, raw: bytes) -> _Reply:
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return _Reply(400, {"ok": False, "error": "invalid_payload"})
        problems = self._response_problems(body)
        with self._changed:
            post = ResponsePost(response_id, body, time.time(), accepted=not problems)
            self._response_posts.append(post)
            if not problems:
                self._apply_response(response_id, body)
            self._changed.notify_all()
        if problems:
            return _Reply(400, SlackError("invalid_blocks", problems).body())
        return _Reply(200, {"ok": True})

    def _response_problems(self, body: JsonDict) -> list[str]:
        blocks = body.get("blocks")
        if blocks is None:
            return []
        if not isinstance(blocks, list):
            return [_problem("must provide an array", "/blocks")]
        return blocks_problems(blocks, limit=MESSAGE_BLOCKS_MAX, pointer="/blocks")

    def _apply_response(self, response_id: str, body: JsonDict) -> None:
        target = self._response_targets.get(response_id)
        if target is None or target.channel is None:
            return
        original = (target.channel, target.message_ts or "")
        if body.get("delete_original") and original in self._messages:
            del self._messages[original]
        elif body.get("replace_original") and original in self._messages:
            message = self._messages[original]
            message.text = str(body.get("text", ""))
            message.blocks = body.get("blocks") or []
            message.edited = True
        elif body.get("response_type") == "in_channel":
            ts = self._next_ts()
            self._messages[(target.channel, ts)] = Message(
                target.channel,
                ts,
                str(body.get("text", "")),
                body.get("blocks") or [],
                thread_ts=body.get("thread_ts"),
            )

    def _check_token(self, token: str | None, method: str) -> None:
        if not token:
            raise SlackError("not_authed")
        if method in APP_TOKEN_METHODS:
            valid = token.startswith("xapp-")
        elif self.valid_tokens is not None:
            valid = token in self.valid_tokens
        else:
            valid = token.startswith("xoxb-")
        if not valid:
            raise SlackError("invalid_auth")
