"""`escbot serve --http`: the HTTP server in front of the WSGI app of `bot.slack.front`.

waitress, because of how it reads: one I/O thread holds every connection and hands a
worker (a fixed pool) only a request whose headers and body have fully arrived. An idle
keep-alive connection or a client that stops half-way through its headers holds no
thread, a body the app never reads cannot be taken for the next request, and waitress
answers a bad `Content-Length` (400), a body over `MAX_BODY` (413) or oversized headers
(431) itself.

Around it: one access-log line per request at INFO, and a graceful stop (`stop()`): no
new connections, every request already received is answered (its connection closed
after it), idle connections are closed, then the workers stop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, Task, WSGITask

from bot.slack.front import NOTE, SlackFront

log = logging.getLogger("escbot.http")

THREADS = 8
MAX_BODY = 1 << 20
MAX_HEADERS = 64 << 10
IDLE_TIMEOUT = 10  # seconds without a byte before an idle or half-sent connection closes
CONNECTION_LIMIT = 1000
STOP_GRACE = 10.0  # seconds a stop waits for requests in progress

T = TypeVar("T")


class _Logged(Task):
    """One line per request, whoever answered it (the app, or waitress for a request it
    refused): client, method, path, status, bytes sent, time, and the app's reason for
    a refusal."""

    def build_response_header(self) -> bytes:
        server = self.channel.server
        if isinstance(server, _Server) and server.stopping:
            self.set_close_on_finish()  # `Connection: close`: no next request here
        return super().build_response_header()

    def service(self) -> None:
        started = time.perf_counter()
        try:
            super().service()
        finally:
            self._log(time.perf_counter() - started)

    def _log(self, elapsed: float) -> None:
        request: Any = self.request  # waitress's stubs call it an Error; it is the parser
        environ = getattr(self, "environ", None) or {}
        note = environ.get(NOTE)
        if note is None and request.error is not None:
            note = request.error.body
        log.info(
            '%s "%s %s" %s %dB %.1fms%s',
            self.channel.addr[0] if self.channel.addr else "-",
            request.command or "-",
            request.path or "-",
            self.status.split(" ", 1)[0],
            self.content_bytes_written,
            elapsed * 1e3,
            f" ({note})" if note else "",
        )


class _AppTask(_Logged, WSGITask):
    pass


class _RefusalTask(_Logged, ErrorTask):
    pass


class _Channel(HTTPChannel):
    task_class = _AppTask
    error_task_class = _RefusalTask


class _Server(TcpWSGIServer):
    channel_class = _Channel
    stopping = False


class SlackHTTPServer:
    """`front` on host:port, served by a thread of its own until `stop()`."""

    def __init__(
        self,
        front: SlackFront,
        host: str,
        port: int,
        *,
        threads: int = THREADS,
        idle_timeout: int = IDLE_TIMEOUT,
    ) -> None:
        self.server = _Server(
            front,
            host=host,
            port=port,
            threads=threads,
            channel_timeout=idle_timeout,
            cleanup_interval=1,  # how often idle connections are looked for (whole seconds)
            connection_limit=CONNECTION_LIMIT,
            max_request_body_size=MAX_BODY,
            max_request_header_size=MAX_HEADERS,
            asyncore_use_poll=True,  # select() stops at 1024 descriptors
            ident="escbot",
            expose_tracebacks=False,
        )
        # waitress warns each time a request waits for a free worker: a burst of clicks
        # is not news (the access log shows the time each request took).
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.port = int(self.server.getsockname()[1])
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._stopping = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        self.thread.start()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting, finish what was received (within `grace` seconds), then stop."""
        with self._stopping:
            if self._stopped:
                return
            self._stopped = True
            if not self.thread.is_alive():
                self.server.close()
                return
            try:
                self._stop(grace)
            except RuntimeError as exc:  # the I/O thread died: nothing left to hand over
                log.error("stopping the HTTP server: %s", exc)

    def _stop(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        self._in_loop(self._stop_accepting)
        while self._in_loop(self._close_idle) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.server.task_dispatcher.shutdown(
            cancel_pending=True, timeout=max(1, math.ceil(deadline - time.monotonic()))
        )
        self._in_loop(self._close_everything)
        self.thread.join(timeout=5)

    # ------------------------------------------------------------ in the I/O thread

    def _in_loop(self, work: Callable[[], T]) -> T:
        """Run `work` in the I/O thread (the only one that may touch its connections)."""
        done = threading.Event()
        result: list[T] = []

        def thunk() -> None:
            try:
                result.append(work())
            finally:
                done.set()

        trigger: Any = self.server.trigger  # the stubs call the trigger an int
        trigger.pull_trigger(thunk)
        if not done.wait(5):
            raise RuntimeError("the HTTP server's I/O thread does not answer")
        if not result:
            raise RuntimeError(f"{work.__name__} failed in the HTTP server's I/O thread")
        return result[0]

    def _stop_accepting(self) -> None:
        self.server.stopping = True
        self.server.accepting = False
        wasyncore.dispatcher.close(self.server)  # the listening socket only

    def _channels(self) -> list[HTTPChannel]:
        channels: Any = self.server.active_channels  # fd -> channel (the stubs disagree)
        return list(channels.values())

    def _close_idle(self) -> bool:
        """Close connections with nothing received or owed; True while any remain."""
        busy = False
        for channel in self._channels():
            if channel.requests or channel.request is not None or channel.total_outbufs_len:
                busy = True
            else:
                channel.handle_close()
        return busy

    def _close_everything(self) -> None:
        for channel in self._channels():
            channel.handle_close()
        trigger: Any = self.server.trigger
        trigger.close()
