"""`escbot serve` in Socket Mode: Slack's requests come as envelopes over a WebSocket from
the fake Socket Mode endpoint, and the bot acks each one on it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.db.store import Store
from tests.conftest import OPERATOR, POLICY_YAML
from tests.slack.conftest import Bot, bot_env, wait_until
from tests.support.bot_process import BotProcess
from tests.support.cli import Cli
from tests.support.databases import DatabaseFactory
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode
from tests.support.keyspace import delete_prefixed, new_prefix
from tests.support.slack_requests import SlackRequests

APP_TOKEN = "xapp-1-test"
# Empty values unset them for slack_sdk and urllib: the bot talks to 127.0.0.1 only.
PROXIES_UNSET = {name: "" for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture(scope="module")
def socket_mode() -> Iterator[FakeSocketMode]:
    """The Socket Mode endpoint; when the module is done, no thread or port is left over."""
    threads_before = set(threading.enumerate())
    server = FakeSocketMode().start()
    port = server.port
    yield server
    server.stop()
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(10)  # e.g. FakeSlack's request threads, which it does not join
    leftover = [t.name for t in set(threading.enumerate()) - threads_before]
    assert leftover == [], f"threads left running: {leftover}"
    assert port_is_closed(port)


@pytest.fixture(scope="module")
def socket_bot(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_databases: DatabaseFactory,
    redis_url: str,
    socket_mode: FakeSocketMode,
) -> Iterator[Bot]:
    """`escbot serve` without --http: Socket Mode, through the fake's apps.connections.open."""
    tmp: Path = tmp_path_factory.mktemp("socket-bot")
    prefix = new_prefix()
    (tmp / "policy.yaml").write_text(POLICY_YAML)
    fake = FakeSlack(socket_mode_url=socket_mode.url).start()
    database_url = sqlite_databases.fresh()
    env = (
        bot_env(fake.api_url, redis_url, prefix, database_url, tmp / "policy.yaml")
        | {"SLACK_APP_TOKEN": APP_TOKEN}
        | PROXIES_UNSET
    )
    process = BotProcess(env, tmp, http=False)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = Store.from_url(env["DATABASE_URL"])
    # Builds payloads only: in Socket Mode nothing listens on events_url.
    payloads = SlackRequests(process.events_url, "", response_urls=fake.response_url)
    bot = Bot(fake, payloads, process, client, prefix, store, env)
    fake_port = fake.port
    try:
        process.start(ready=lambda: socket_mode.connected)
        [opened] = fake.calls("apps.connections.open")
        assert opened.token == APP_TOKEN and opened.error is None
        yield bot
        running = process.process
        process.stop()
        assert running is not None and running.returncode == 0, process.log()
        socket_mode.wait_disconnected(timeout=10)
    finally:
        process.stop()
        payloads.close()
        fake.stop()
        store.dispose()
        delete_prefixed(client, prefix)
        assert list(client.scan_iter(match=f"{prefix}*", count=1000)) == []
        client.close()
    assert port_is_closed(fake_port)


@contextlib.contextmanager
def explained(bot: Bot) -> Iterator[None]:
    """A failed assertion inside comes with the bot's log."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- escbot log ---\n{bot.process.log()}") from exc


def acked(socket_mode: FakeSocketMode, envelope_id: str) -> dict[str, Any] | None:
    """The payload of the envelope's ack (None for a bare ack)."""
    return socket_mode.wait_for_ack(envelope_id, timeout=10).payload


def test_a_slash_command_over_socket_mode_kills_and_answers(
    socket_bot: Bot, socket_mode: FakeSocketMode
) -> None:
    bot = socket_bot
    task_id = f"refund-{uuid.uuid4().hex[:8]}"
    response_url = bot.fake.response_url()
    form = bot.slack.slash_command_form(
        f"kill {task_id} socket", user_id=OPERATOR, response_url=response_url
    )
    with explained(bot):
        envelope_id = socket_mode.send_envelope("slash_commands", form)
        reply = acked(socket_mode, envelope_id)  # the answer, ready in time, is in the ack
        assert reply is not None and reply.get("response_type") == "ephemeral", reply
        assert "Killed" in reply["text"], reply
        value = json.loads(bot.rdb.get(bot.key(f"kill:{task_id}")) or "{}")
        assert value["reason"] == "socket" and value["by"] == OPERATOR
        assert bot.fake.responses(response_url.rsplit("/", 1)[-1]) == []


def test_help_is_answered_in_the_ack(socket_bot: Bot, socket_mode: FakeSocketMode) -> None:
    bot = socket_bot
    response_url = bot.fake.response_url()
    form = bot.slack.slash_command_form("help", user_id=OPERATOR, response_url=response_url)
    with explained(bot):
        envelope_id = socket_mode.send_envelope("slash_commands", form)
        payload = acked(socket_mode, envelope_id)
        assert payload is not None and payload.get("response_type") == "ephemeral", payload
        assert "/agent kill <task_id>" in payload["text"]
        assert bot.fake.responses(response_url.rsplit("/", 1)[-1]) == []


def test_a_message_in_a_thread_that_is_not_a_card_is_acked_and_changes_nothing(
    socket_bot: Bot, socket_mode: FakeSocketMode
) -> None:
    bot = socket_bot
    parent = bot.fake.seed_message("C0TRIAGE", "lunch?", user=OPERATOR)
    chat = bot.fake.seed_message("C0TRIAGE", "pizza", user=OPERATOR, thread_ts=parent.ts)
    event = bot.slack.message_event(
        text="pizza", user=OPERATOR, channel="C0TRIAGE", ts=chat.ts, thread_ts=parent.ts
    )
    audit_before = len(bot.audit())
    with explained(bot):
        envelope_id = socket_mode.send_envelope("events_api", bot.slack.event_payload(event))
        assert acked(socket_mode, envelope_id) is None

        # A later reply under a real card is relayed: the first event was handled by then.
        data, card = bot.escalate()
        reply = bot.fake.seed_message(card.channel, "go ahead", user=OPERATOR, thread_ts=card.ts)
        later = bot.slack.message_event(
            text="go ahead", user=OPERATOR, channel=card.channel, ts=reply.ts, thread_ts=card.ts
        )
        later_id = socket_mode.send_envelope("events_api", bot.slack.event_payload(later))
        assert acked(socket_mode, later_id) is None
        inbox = bot.key(f"inbox:{data['task_id']}")
        [(_, entry)] = wait_until(lambda: bot.rdb.xrange(inbox), what="the later relay")
        assert entry["text"] == "go ahead"
        wait_until(
            lambda: "incoming_envelope" in bot.fake.message(card.channel, reply.ts).reactions,
            what="the later reply's delivered mark",
        )

        assert bot.fake.message("C0TRIAGE", chat.ts).reactions == []
        marked = [c.params.get("timestamp") for c in bot.fake.calls("reactions.add")]
        assert chat.ts not in marked
        assert [row["action"] for row in bot.audit()[audit_before:]] == ["message"]
        assert bot.audit(action="message", task_id=data["task_id"])


def test_slack_down_at_start_is_waited_for_not_fatal(
    tmp_path: Path,
    sqlite_databases: DatabaseFactory,
    redis_url: str,
    socket_mode: FakeSocketMode,
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    with FakeSlack(socket_mode_url=socket_mode.url) as fake:
        fake.set_down(True)
        database_url = sqlite_databases.fresh()
        env = (
            bot_env(fake.api_url, redis_url, new_prefix(), database_url, tmp_path / "policy.yaml")
            | {"SLACK_APP_TOKEN": APP_TOKEN}
            | PROXIES_UNSET
        )
        process = BotProcess(env, tmp_path, http=False)
        try:
            process.start(ready=lambda: len(fake.calls("apps.connections.open")) >= 1, timeout=30)
            assert process.process is not None and process.process.poll() is None
            fake.set_down(False)
            socket_mode.wait_connected(timeout=20)
        finally:
            process.stop()


def test_a_refused_app_token_stops_start_up_in_one_line(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY_YAML)
    with FakeSlack() as fake:  # no Socket Mode URL: apps.connections.open is refused
        database_url = sqlite_databases.fresh()
        env = bot_env(fake.api_url, redis_url, new_prefix(), database_url, tmp_path / "policy.yaml")
        cli = Cli(tmp_path, env | {"SLACK_APP_TOKEN": APP_TOKEN})
        ran = cli("serve")
    assert ran.code == 2, ran.err
    assert "Traceback" not in ran.err and "token` will be unused" not in ran.err
    last = ran.err.strip().splitlines()[-1]
    assert last == "escbot: SLACK_APP_TOKEN: Slack refused the token (access_denied)", ran.err
