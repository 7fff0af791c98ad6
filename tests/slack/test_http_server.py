"""The HTTP server of `escbot serve --http`, probed from outside over raw sockets."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import ExitStack
from urllib.parse import urlencode

import pytest

from tests.conftest import OPERATOR
from tests.slack.conftest import Bot
from tests.support.raw_http import RawConnection, request, signed
from tests.support.slack_requests import FORM
from tests.support.waiting import wait_until


def threads_of(bot: Bot) -> int:
    assert bot.process.process is not None
    return len(os.listdir(f"/proc/{bot.process.process.pid}/task"))


def kill_request(bot: Bot, task_id: str) -> bytes:
    fields = bot.slack.slash_command_form(f"kill {task_id} raw", user_id=OPERATOR)
    return signed(bot.slack, urlencode(fields).encode(), FORM)


def killed(bot: Bot, task_id: str) -> bool:
    return bool(bot.rdb.exists(bot.key(f"kill:{task_id}")))


def test_a_body_nobody_reads_is_never_taken_for_the_next_request(bot: Bot) -> None:
    smuggled = f"smuggled-{uuid.uuid4().hex[:8]}"
    real = f"real-{uuid.uuid4().hex[:8]}"
    with RawConnection(bot.process.port) as conn:
        # A request to an unknown path whose body is a whole signed kill, then a real
        # kill, pipelined on one keep-alive connection.
        conn.send(request("POST", "/nope", kill_request(bot, smuggled)) + kill_request(bot, real))
        assert conn.response().status == 404
        assert conn.response().status == 200
        wait_until(lambda: killed(bot, real), what="the real kill")
        assert not conn.closed_by_server(0.5)  # still a usable keep-alive connection
        conn.send(request("GET", "/healthz"))
        assert conn.response().status == 200
    assert not killed(bot, smuggled)
    assert bot.audit(task_id=smuggled) == []


def test_an_oversized_body_gets_413_and_the_connection_closes(bot: Bot) -> None:
    with RawConnection(bot.process.port) as conn:
        head = request("POST", "/slack/events", headers={"Content-Length": str(2 << 20)})
        conn.send(head + request("GET", "/healthz"))  # the "body" starts with a request
        response = conn.response()
        assert response.status == 413
        assert response.headers.get("connection") == "close"
        assert conn.closed_by_server(5)


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", " 5x", "5, 6"])
def test_a_bad_content_length_gets_400_at_once(bot: Bot, length: str) -> None:
    with RawConnection(bot.process.port, timeout=5) as conn:
        conn.send(request("POST", "/slack/events", b"hello", headers={"Content-Length": length}))
        started = time.monotonic()
        assert conn.response().status == 400
        assert time.monotonic() - started < 2
        assert conn.closed_by_server(5)
    assert "Traceback" not in bot.process.log()


def test_idle_and_half_sent_connections_hold_no_thread(bot: Bot) -> None:
    before = threads_of(bot)
    with ExitStack() as stack:
        idle = [stack.enter_context(RawConnection(bot.process.port)) for _ in range(300)]
        half = [stack.enter_context(RawConnection(bot.process.port)) for _ in range(50)]
        for conn in half:
            conn.send(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        # Every connection is accepted and held, and a kill still goes through at once.
        task = f"busy-{uuid.uuid4().hex[:8]}"
        with RawConnection(bot.process.port) as conn:
            conn.send(kill_request(bot, task))
            assert conn.response().status == 200
        wait_until(lambda: killed(bot, task), timeout=5, what="the kill")
        assert threads_of(bot) <= before + 1
        assert not any(conn.closed_by_server(0.01) for conn in idle[:5] + half[:5])


def test_one_access_log_line_per_request_at_info(bot: Bot) -> None:
    marker = f"/nope-{uuid.uuid4().hex[:8]}"
    with RawConnection(bot.process.port) as conn:
        conn.send(request("GET", marker))
        assert conn.response().status == 404
        conn.send(request("POST", "/slack/events", b"x", headers={"Content-Length": "-1"}))
        assert conn.response().status == 400

    def lines() -> list[str]:
        log = bot.process.log().splitlines()
        return [line for line in log if f'"GET {marker}"' in line]

    [line] = wait_until(lines, what="the access-log line")
    assert " INFO escbot.http: 127.0.0.1 " in line and f'"GET {marker}" 404' in line
    assert any('"POST /slack/events" 400' in line for line in bot.process.log().splitlines())
