"""A running `escbot serve --http` against the fake Slack, the real Redis and a database."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from bot.db import audit
from bot.db.models import CardRow
from bot.db.store import Store
from tests.conftest import GROUP_MEMBER, POLICY_YAML
from tests.support.bot_process import BotProcess
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation_data
from tests.support.fake_slack import FakeSlack, Message
from tests.support.keyspace import delete_prefixed, new_prefix
from tests.support.slack_requests import SlackRequests
from tests.support.waiting import wait_until

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"


@dataclass
class Bot:
    """The bot under test and everything around it."""

    fake: FakeSlack
    slack: SlackRequests
    process: BotProcess
    rdb: redis.Redis
    prefix: str
    store: Store
    env: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def escalate(self, **overrides: Any) -> tuple[dict[str, Any], Message]:
        """An agent's escalation through the stream, and the card the bot posts for it."""
        data = escalation_data(**overrides)
        self.rdb.xadd(self.key("escalations"), {"payload": json.dumps(data)})
        card = self.card(data["escalation_id"])
        wait_until(lambda: self.recorded(card), what="the card's ts in the database")
        return data, card

    def recorded(self, card: Message) -> bool:
        with self.store.reading() as session:
            found = session.execute(
                select(CardRow.id).where(CardRow.channel == card.channel, CardRow.ts == card.ts)
            ).first()
            return found is not None

    def card(
        self, escalation_id: str, channel: str | None = None, timeout: float = 10.0
    ) -> Message:
        def find() -> Message | None:
            for message in self.fake.messages(channel):
                if message.thread_ts in (None, message.ts) and escalation_id in json.dumps(
                    message.blocks
                ):
                    return message
            return None

        return wait_until(find, timeout, f"the card of {escalation_id}")

    def audit(self, **match: Any) -> list[dict[str, Any]]:
        with self.store.reading() as session:
            rows = [record.as_json() for record in audit.iter_records(session)]
        return [row for row in rows if all(row.get(k) == v for k, v in match.items())]

    def wait_audit(self, count: int = 1, timeout: float = 10.0, **match: Any) -> list[dict]:
        return wait_until(
            lambda: (rows := self.audit(**match)) and len(rows) >= count and rows,
            timeout,
            f"{count} audit row(s) {match}",
        )

    def command(self, text: str, user: str, **kwargs: Any) -> Any:
        return self.slack.slash_command(text, user_id=user, **kwargs)

    def reply_to(self, response: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The ephemeral answer sent to a request's response_url (or its ack body)."""
        assert response.status_code == 200, response.text
        if response.text:
            return response.json()
        form = response.request.body
        url = response_url_of(form)
        return self.fake.wait_for_response(id=url.rsplit("/", 1)[-1], timeout=timeout)

    def click(self, action: str, card: Message, user: str, **kwargs: Any) -> Any:
        value = _button_value(card, action)
        return self.slack.click(
            action_id=action,
            value=value,
            user_id=user,
            channel_id=card.channel,
            message_ts=card.ts,
            message_blocks=card.blocks,
            **kwargs,
        )


def _button_value(card: Message, action: str) -> str:
    for block in card.blocks or []:
        for element in block.get("elements", []):
            if isinstance(element, dict) and element.get("action_id") == action:
                return element["value"]
    raise AssertionError(f"no {action} button on the card")


def response_url_of(body: Any) -> str:
    from urllib.parse import parse_qs

    text = body.decode() if isinstance(body, bytes) else str(body)
    fields = parse_qs(text)
    if "response_url" in fields:
        return fields["response_url"][0]
    return json.loads(fields["payload"][0])["response_url"]


def bot_env(
    api_url: str, redis_url: str, prefix: str, database_url: str, policy: Path
) -> dict[str, str]:
    """`escbot serve`'s settings against the fakes, without the Slack signing secret or
    app token that pick its mode."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": api_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "DATABASE_URL": database_url,
        "ESCBOT_POLICY": str(policy),
        "ESCBOT_SWEEP_INTERVAL": "1",
    }


def make_bot(
    tmp: Path,
    database_url: str,
    redis_url: str,
    *,
    extra_env: dict[str, str] | None = None,
    policy: str = POLICY_YAML,
) -> Iterator[Bot]:
    prefix = new_prefix()
    (tmp / "policy.yaml").write_text(policy)
    fake = FakeSlack(groups={"S0OPS": [GROUP_MEMBER]}).start()
    env = (
        bot_env(fake.api_url, redis_url, prefix, database_url, tmp / "policy.yaml")
        | {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
        | (extra_env or {})
    )
    process = BotProcess(env, tmp)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = Store.from_url(database_url)
    slack = SlackRequests(process.events_url, SIGNING_SECRET, response_urls=fake.response_url)
    bot = Bot(fake, slack, process, client, prefix, store, env)
    try:
        process.start()
        yield bot
    finally:
        process.stop()
        slack.close()
        fake.stop()
        store.dispose()
        delete_prefixed(client, prefix)
        client.close()


running_bot = contextlib.contextmanager(make_bot)


@pytest.fixture(scope="module")
def bot(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_databases: DatabaseFactory,
    redis_url: str,
) -> Iterator[Bot]:
    """One bot for a test module (starting one takes a second or two); tests use task ids
    of their own, so they do not see each other."""
    yield from make_bot(tmp_path_factory.mktemp("bot"), sqlite_databases.fresh(), redis_url)
