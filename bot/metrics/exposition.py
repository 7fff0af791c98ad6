"""The metrics in Prometheus's text format: for the HTTP server's `GET /metrics`, and a
server of their own on `--metrics-port` in Socket Mode."""

from __future__ import annotations

import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import start_http_server

METRICS_PATH = "/metrics"


def render(registry: CollectorRegistry) -> tuple[str, str]:
    """(content type, body)."""
    return CONTENT_TYPE_LATEST, generate_latest(registry).decode()


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int
) -> tuple[int, Callable[[], None]]:
    """Serve `/metrics` on host:port from a thread of its own: (the port, its stop)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])

    def stop() -> None:
        _shutdown(server, thread)

    return bound, stop


def _shutdown(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
