"""The sandbox's workspace: who may act, the channels, and what each person does and
sees. Every action goes to the bot as the signed request Slack would send
(`bot.sandbox.signed`); what the bot sends back through the Web API lands in the
sandbox's Slack (`SandboxSlack`), and `snapshot` draws it for one person: channel
messages with their threads and reactions, the answers only that person sees, and the
modal that person has open."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox import blockkit
from bot.sandbox.mrkdwn import Names
from bot.sandbox.signed import Answer, SignedSender, trigger_id
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_records import BOT_ID, BOT_NAME, BOT_USER_ID, Message

JsonDict = dict[str, Any]
COMMAND = "/agent"
REACTIONS = {"incoming_envelope": "📨", "white_check_mark": "✅", "eyes": "👀", "x": "❌"}


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: str  # what the sample policy makes of them: operator, admin or stranger


@dataclass(frozen=True)
class Private:
    """An answer only one person sees (Slack's ephemeral messages)."""

    user: str
    channel: str
    at: float
    text: str
    blocks: list[JsonDict]


@dataclass
class _Seen:
    answers: list[Private] = field(default_factory=list)
    responders: dict[str, tuple[str, str]] = field(default_factory=dict)  # url id -> who, where
    triggers: dict[str, str] = field(default_factory=dict)  # trigger_id -> who
    closed: set[str] = field(default_factory=set)  # view ids
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # view id -> block -> why
    replaced: dict[str, JsonDict] = field(default_factory=dict)  # view id -> `update`d view


class Workspace:
    def __init__(
        self,
        slack: SandboxSlack,
        bot: SignedSender,
        people: list[Person],
        channels: dict[str, str],
    ) -> None:
        self.slack = slack
        self.bot = bot
        self.people = {person.user_id: person for person in people}
        self.channels = channels
        self.names = Names(
            users={BOT_USER_ID: BOT_NAME, **{p.user_id: p.name for p in people}},
            channels=channels,
        )
        self._lock = threading.Lock()
        self._seen = _Seen()

    def person(self, user_id: str) -> Person:
        person = self.people.get(user_id)
        if person is None:
            raise ValueError(f"nobody here has the user id {user_id!r}")
        return person

    def channel(self, channel_id: str) -> str:
        if channel_id not in self.channels:
            raise ValueError(f"there is no channel {channel_id!r} here")
        return channel_id

    # ------------------------------------------------------------ what people do

    def say(self, user_id: str, channel_id: str, text: str) -> None:
        """What is typed into a channel's box: `/agent …`, or a message to the channel."""
        person, channel = self.person(user_id), self.channel(channel_id)
        stripped = text.strip()
        if stripped == COMMAND or stripped.startswith(COMMAND + " "):
            answer = self.bot.slash_command(
                stripped.removeprefix(COMMAND).strip(),
                user_id=person.user_id,
                user_name=person.name,
                channel_id=channel,
                response_url=self._response_url(person.user_id, channel),
                trigger=self._trigger(person.user_id),
            )
            self._note_answer(person.user_id, channel, answer)
        elif stripped.startswith("/"):
            command = stripped.split()[0]
            self._private(person.user_id, channel, f"`{command}` is not a command here.")
        elif stripped:
            self._post(person, channel, stripped, thread_ts=None)

    def reply(self, user_id: str, channel_id: str, thread_ts: str, text: str) -> None:
        person, channel = self.person(user_id), self.channel(channel_id)
        self.slack.message(channel, thread_ts)  # KeyError when there is no such message
        if text.strip():
            self._post(person, channel, text.strip(), thread_ts=thread_ts)

    def _post(self, person: Person, channel: str, text: str, thread_ts: str | None) -> None:
        posted = self.slack.seed_message(channel, text, user=person.user_id, thread_ts=thread_ts)
        answer = self.bot.message_event(
            user_id=person.user_id, channel_id=channel, text=text, ts=posted.ts, thread_ts=thread_ts
        )
        self._note_answer(person.user_id, channel, answer, quiet=True)

    def click(self, user_id: str, channel_id: str, ts: str, action: JsonDict) -> None:
        person, channel = self.person(user_id), self.channel(channel_id)
        message = self.slack.message(channel, ts)
        trigger = self._trigger(person.user_id)
        answer = self.bot.block_actions(
            user_id=person.user_id,
            user_name=person.name,
            channel_id=channel,
            message=message.to_slack(),
            action=_clicked(action),
            response_url=self._response_url(person.user_id, channel, ts),
            trigger=trigger,
        )
        self._note_answer(person.user_id, channel, answer, quiet=True)

    def submit(self, user_id: str, view_id: str, values: JsonDict) -> None:
        person = self.person(user_id)
        view = self._view_of(person.user_id, view_id)
        if view is None:
            raise ValueError(f"no modal {view_id!r} is open for {person.name}")
        answer = self.bot.view_submission(
            user_id=person.user_id, user_name=person.name, view=view, values=values
        )
        body = answer.json() or {}
        action = body.get("response_action")
        with self._lock:
            self._seen.errors.pop(view_id, None)
            if answer.status != 200:
                self._seen.errors[view_id] = {"": f"The bot answered {answer.status}."}
            elif action == "errors":
                errors = body.get("errors") or {}
                self._seen.errors[view_id] = {str(k): str(v) for k, v in errors.items()}
            elif action in ("update", "push") and isinstance(body.get("view"), dict):
                self._seen.replaced[view_id] = body["view"]
            else:
                self._seen.closed.add(view_id)

    def close_view(self, user_id: str, view_id: str) -> None:
        self.person(user_id)
        with self._lock:
            self._seen.closed.add(view_id)

    # ------------------------------------------------------------ answers

    def _trigger(self, user_id: str) -> str:
        """A `trigger_id` for this person's action: a modal it opens is theirs."""
        trigger = trigger_id()
        with self._lock:
            self._seen.triggers[trigger] = user_id
        return trigger

    def _response_url(self, user_id: str, channel: str, message_ts: str | None = None) -> str:
        url = self.slack.response_url(channel=channel, message_ts=message_ts)
        with self._lock:
            self._seen.responders[url.rsplit("/", 1)[1]] = (user_id, channel)
        return url

    def _note_answer(self, user_id: str, channel: str, answer: Answer, quiet: bool = False) -> None:
        """The ack's own answer, shown to the person (an empty ack shows nothing)."""
        if answer.status != 200:
            self._private(user_id, channel, f"⚠️ The bot answered {answer.status}: {answer.body}")
            return
        body = answer.json()
        if body is None:
            if answer.body.strip() and not quiet:
                self._private(user_id, channel, answer.body)
            return
        if body.get("text") or body.get("blocks"):
            self._private(user_id, channel, str(body.get("text", "")), body.get("blocks") or [])

    def _private(
        self, user_id: str, channel: str, text: str, blocks: list[JsonDict] | None = None
    ) -> None:
        with self._lock:
            self._seen.answers.append(Private(user_id, channel, time.time(), text, blocks or []))

    def _answers_for(self, user_id: str) -> list[Private]:
        with self._lock:
            answers = [a for a in self._seen.answers if a.user == user_id]
            responders = dict(self._seen.responders)
        for post in self.slack.response_posts():
            owner = responders.get(post.id)
            body = post.body
            if not post.accepted or owner is None or owner[0] != user_id:
                continue
            if body.get("response_type") == "in_channel" or body.get("replace_original"):
                continue  # in the channel for everyone, or the message itself changed
            if body.get("delete_original"):
                continue
            answers.append(
                Private(
                    user_id, owner[1], post.at, str(body.get("text", "")), body.get("blocks") or []
                )
            )
        for ephemeral in self.slack.ephemerals(user=user_id):
            answers.append(
                Private(
                    user_id,
                    ephemeral.channel,
                    float(ephemeral.message_ts),
                    ephemeral.text,
                    ephemeral.blocks,
                )
            )
        return answers

    # ------------------------------------------------------------ modals

    def _view_of(self, user_id: str, view_id: str) -> JsonDict | None:
        for view in self._open_views(user_id):
            if view["id"] == view_id:
                return view
        return None

    def _open_views(self, user_id: str) -> list[JsonDict]:
        with self._lock:
            triggers = dict(self._seen.triggers)
            closed = set(self._seen.closed)
            replaced = dict(self._seen.replaced)
        found = []
        for view in self.slack.views():
            opener = self.slack.view_trigger(view["id"])
            if opener is None or triggers.get(opener) != user_id or view["id"] in closed:
                continue
            found.append({**view, **replaced.get(view["id"], {}), "id": view["id"]})
        return sorted(found, key=lambda v: str(v["id"]))

    def _modal(self, user_id: str) -> JsonDict | None:
        views = self._open_views(user_id)
        if not views:
            return None
        view = views[-1]
        with self._lock:
            errors = dict(self._seen.errors.get(view["id"], {}))
        return {
            "id": view["id"],
            "hash": view.get("hash"),
            "html": blockkit.view(view, self.names),
            "errors": errors,
            **blockkit.view_chrome(view, self.names),
        }

    # ------------------------------------------------------------ what a person sees

    def snapshot(self, user_id: str) -> JsonDict:
        person = self.person(user_id)
        answers = self._answers_for(person.user_id)
        channels = []
        for channel_id, name in self.channels.items():
            messages = self.slack.messages(channel_id)
            replies: dict[str, list[JsonDict]] = {}
            roots: list[JsonDict] = []
            for message in messages:
                drawn = self._message(message)
                if message.thread_ts is not None and message.thread_ts != message.ts:
                    replies.setdefault(message.thread_ts, []).append(drawn)
                else:
                    roots.append(drawn)
            for root in roots:
                root["replies"] = replies.get(root["ts"], [])
            roots += [self._answer(a) for a in answers if a.channel == channel_id]
            roots.sort(key=lambda m: float(m["at"]))
            channels.append({"id": channel_id, "name": name, "messages": roots})
        return {
            "me": person.user_id,
            "people": [vars(p) for p in self.people.values()],
            "channels": channels,
            "modal": self._modal(person.user_id),
        }

    def _message(self, message: Message) -> JsonDict:
        return {
            "ts": message.ts,
            "at": float(message.ts),
            "author": self.names.user(message.user),
            "bot": message.bot_id == BOT_ID,
            "private": False,
            "edited": message.edited,
            "html": blockkit.message(message.text, message.blocks, self.names),
            "reactions": [
                {"name": name, "emoji": REACTIONS.get(name, f":{name}:"), "count": 1}
                for name in message.reactions
            ],
        }

    def _answer(self, answer: Private) -> JsonDict:
        return {
            "ts": f"private-{answer.at:.6f}",
            "at": answer.at,
            "author": BOT_NAME,
            "bot": True,
            "private": True,
            "edited": False,
            "html": blockkit.message(answer.text, answer.blocks, self.names),
            "reactions": [],
            "replies": [],
        }


def _clicked(action: JsonDict) -> JsonDict:
    """The clicked button as Slack describes it in `actions`."""
    text = action.get("text")
    return {
        "type": str(action.get("type") or "button"),
        "action_id": str(action.get("action_id", "")),
        "block_id": str(action.get("block_id", "")),
        "value": str(action.get("value", "")),
        "text": text if isinstance(text, dict) else {"type": "plain_text", "text": ""},
    }
