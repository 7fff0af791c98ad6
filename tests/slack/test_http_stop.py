"""Stopping the HTTP server gracefully, and its timeouts: the server in this process on
real sockets (so a request can be held in progress), and `escbot serve` under SIGTERM."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.app import fixed_authorize
from bot.slack.front import SlackFront
from bot.slack.http import SlackHTTPServer
from tests.conftest import OPERATOR
from tests.slack.conftest import SIGNING_SECRET, running_bot
from tests.support.databases import DatabaseFactory
from tests.support.raw_http import RawConnection, request
from tests.support.waiting import wait_until


@dataclass
class Served:
    server: SlackHTTPServer
    entered: threading.Event  # a /healthz is in progress
    release: threading.Event  # … and may answer

    @property
    def port(self) -> int:
        return self.server.port

    def refuses_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):
            return True  # reset: the attempt was in the backlog of the listener as it closed
        return False


@pytest.fixture
def served() -> Iterator[Served]:
    """The server on a free port, with a /healthz that waits until released."""
    entered, release = threading.Event(), threading.Event()

    def health() -> dict[str, str]:
        entered.set()
        release.wait(20)
        return {"database": "ok", "redis": "ok"}

    app = App(
        client=WebClient(base_url="http://127.0.0.1:9/"),
        authorize=fixed_authorize("xoxb-test", {}),
        signing_secret=SIGNING_SECRET,
    )
    server = SlackHTTPServer(
        SlackFront(app, SIGNING_SECRET, health), "127.0.0.1", 0, idle_timeout=1
    )
    server.start()
    try:
        yield Served(server, entered, release)
    finally:
        release.set()
        server.stop(grace=1)


def test_idle_and_half_sent_connections_close_after_the_idle_timeout(served: Served) -> None:
    served.release.set()
    with (
        RawConnection(served.port) as idle,
        RawConnection(served.port) as half,
        RawConnection(served.port) as used,
    ):
        half.send(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        used.send(request("GET", "/healthz"))
        assert used.response().status == 200
        started = time.monotonic()
        assert all(conn.closed_by_server(5) for conn in (idle, half, used))
        assert time.monotonic() - started < 4


def test_stop_answers_the_request_in_progress_then_stops(served: Served) -> None:
    with RawConnection(served.port) as busy, RawConnection(served.port) as idle:
        busy.send(request("GET", "/healthz"))
        assert served.entered.wait(5)
        stopping = threading.Thread(target=served.server.stop)
        stopping.start()
        # No new connections, the idle one is closed, the busy one is still waited for.
        wait_until(served.refuses_connections, timeout=5, what="the listener to close")
        assert idle.closed_by_server(5)
        assert stopping.is_alive()
        served.release.set()
        response = busy.response()
        assert response.status == 200 and response.headers["connection"] == "close"
        assert busy.closed_by_server(5)
        stopping.join(10)
        assert not stopping.is_alive() and not served.server.thread.is_alive()


def test_stop_gives_up_on_a_request_after_its_grace(served: Served) -> None:
    with RawConnection(served.port) as busy:
        busy.send(request("GET", "/healthz"))
        assert served.entered.wait(5)
        started = time.monotonic()
        served.server.stop(grace=0.5)
        assert time.monotonic() - started < 5
        assert busy.closed_by_server(5)
    assert not served.server.thread.is_alive()


def test_sigterm_lets_a_kill_in_progress_finish_then_exits(
    tmp_path: Path, sqlite_databases: DatabaseFactory, redis_url: str
) -> None:
    url = sqlite_databases.fresh()
    with running_bot(tmp_path, url, redis_url) as bot:
        process = bot.process.process
        assert process is not None
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the kill will wait for the database
        task = f"refund-{uuid.uuid4().hex[:8]}"
        try:
            assert bot.command(f"kill {task} stopping", OPERATOR).status_code == 200
            time.sleep(0.3)
            assert not bot.rdb.exists(bot.key(f"kill:{task}"))
            process.send_signal(signal.SIGTERM)
            wait_until(lambda: "escbot stopping" in bot.process.log(), what="the stop")
            time.sleep(0.3)
            assert process.poll() is None  # waiting for the kill
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert process.wait(15) == 0
        assert bot.rdb.exists(bot.key(f"kill:{task}"))
        [row] = bot.audit(task_id=task, action="kill")
        assert row["reason"] == "stopping"
        assert "Traceback" not in bot.process.log()
