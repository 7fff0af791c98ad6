"""`escbot serve`: the long-running bot.

Threads: Slack's requests (HTTP or Socket Mode), the intake of `escalations`, the relay
of `agent-events`, the Slack worker (cards, announcements), and one scheduler job, the
sweep. Everything that can be retried lives in the database, so stopping at any moment
loses nothing.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from bot.control import connect
from bot.core.delivery import ChatDelivery
from bot.db import migrate as migrations
from bot.db.engine import make_engine
from bot.errors import ConfigError
from bot.intake import Intake
from bot.logs import log_event
from bot.metrics import METRICS_PATH, ServiceMetrics, StateGauges, render, serve_metrics
from bot.outcomes import OutcomesReader
from bot.pager import Pager
from bot.policy import Policy, PolicyHolder, load_policy
from bot.policy.redaction import rules_source
from bot.policy_reload import PolicyReloader
from bot.redaction.outgoing import redact_logs
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings, read_settings
from bot.signals import SignalReader
from bot.streams import default_consumer
from bot.sweep_job import start_sweep

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.slack.outage import Outage


log = logging.getLogger("escbot")


def startup_problems(settings: Settings, *, http: bool) -> dict[str, str]:
    """What the chosen mode needs and does not have (environment name -> the problem)."""
    problems = {
        name: f"{name} is required but not set" for name in settings.missing("slack_bot_token")
    }
    if http:
        for name in settings.missing("slack_signing_secret"):
            problems[name] = f"{name} is required with --http but not set"
    elif settings.slack_app_token is None:
        problems["SLACK_APP_TOKEN"] = (
            "SLACK_APP_TOKEN is required for Socket Mode (or run `escbot serve --http`)"
        )
    return problems


def check_start_up(
    settings: Settings, *, http: bool, malformed: Mapping[str, str] | None = None
) -> Policy:
    """The policy `serve` runs with, or one ConfigError naming every setting that is
    missing or malformed (`malformed`: from `read_settings`), not one per attempt."""
    problems = dict(malformed or {})
    for name, problem in startup_problems(settings, http=http).items():
        problems.setdefault(name, problem)  # a malformed setting is named once, as malformed
    policy: Policy | None = None
    try:
        policy = load_policy(settings.policy_path)
    except ConfigError as exc:
        problems["ESCBOT_POLICY"] = exc.message
    if problems or policy is None:
        raise ConfigError("; ".join(problems.values()))
    return policy


def serve_from_environment(
    *, http: bool, host: str, port: int, migrate: bool, metrics_port: int | None = None
) -> int:
    settings, malformed = read_settings()
    policy = check_start_up(settings, http=http, malformed=malformed)
    return serve(
        settings,
        http=http,
        host=host,
        port=port,
        migrate=migrate,
        policy=policy,
        metrics_port=metrics_port,
    )


def serve(
    settings: Settings,
    *,
    http: bool,
    host: str,
    port: int,
    migrate: bool,
    policy: Policy | None = None,
    metrics_port: int | None = None,
) -> int:
    from bot.slack.agent_events import AgentEventsRelay
    from bot.slack.app import create_app
    from bot.slack.client import check_token, make_web_client
    from bot.slack.directory import SlackGroupDirectory
    from bot.slack.outage import Outage
    from bot.slack.pacing import ChannelPacer
    from bot.slack.worker import SlackWorker
    from handlers.deps import Deps

    if policy is None:
        policy = check_start_up(settings, http=http)
    if migrate:
        engine = make_engine(settings.database_url)
        migrations.upgrade(engine)
        engine.dispose()
    assert settings.slack_bot_token is not None
    token = settings.slack_bot_token.get_secret_value()
    outage = Outage()  # one report of a Slack outage, whichever part of the bot meets it
    policies = PolicyHolder(policy)
    rules = rules_source(policies)
    redact_logs(rules)
    pacer = ChannelPacer()  # every thread that posts shares Slack's per-channel limit
    client = make_web_client(
        token, settings.slack_api_base, outage=outage, rules=rules, pacer=pacer
    )
    identity = check_token(client)
    runtime = build_runtime(settings, policy=policies, directory=SlackGroupDirectory(client))
    owner = default_consumer()
    delivery = ChatDelivery(runtime.store, owner)
    runtime.service.adopt_policy(policy)  # records a change made while the bot was down
    metrics = start_metrics(runtime, policies)
    runtime.service.listeners.append(log_event)
    worker = SlackWorker(
        client,
        delivery,
        policies,
        pacer=pacer,
        workspace_url=identity.get("url") if identity else None,
    )
    runtime.service.listeners.append(worker.wake)
    deps = Deps(runtime.service, delivery)
    signing = settings.slack_signing_secret
    secret = signing.get_secret_value() if http and signing is not None else None
    app, _registry = create_app(
        token=token,
        api_url=settings.slack_api_base,
        signing_secret=secret,
        deps=deps,
        identity=identity,
        outage=outage,
        rules=rules,
    )

    stop_front = _start_front(
        app, settings, http=http, host=host, port=port, runtime=runtime, metrics=metrics
    )
    stop_metrics = _start_metrics_port(metrics, host, metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    reloader = PolicyReloader(settings.policy_path, runtime.service)
    signal.signal(signal.SIGHUP, lambda *_: reloader.poke())
    # `kill -USR1 <pid>`: every thread's stack to stderr, for a bot that seems stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    streams = connect(settings.redis_url, timeout=5)
    threads = [
        _thread("intake", Intake(streams, runtime.keys, runtime.service, consumer=owner).run, stop),
        _thread(
            "agent-events",
            AgentEventsRelay(
                connect(settings.redis_url, timeout=5),
                runtime.keys,
                client,
                runtime.service,
                policies,
                consumer=owner,
                pacer=pacer,
            ).run,
            stop,
        ),
        _thread("slack-worker", worker.run, stop),
        _thread("policy-reload", reloader.run, stop),
        _thread(
            "signals",
            SignalReader(
                connect(settings.redis_url, timeout=5),
                runtime.keys,
                runtime.service,
                consumer=owner,
            ).run,
            stop,
        ),
        _thread(
            "outcomes",
            OutcomesReader(
                connect(settings.redis_url, timeout=5),
                runtime.keys,
                runtime.service,
                consumer=owner,
            ).run,
            stop,
        ),
    ]
    wakers = [worker.wake]
    if settings.pagerduty_routing_key is not None:
        pager = Pager(
            runtime.service,
            settings.pagerduty_routing_key.get_secret_value(),
            str(settings.pagerduty_events_url),
            poll_interval=settings.sweep_interval,
            ca_file=settings.ca_file,
        )
        runtime.service.listeners.append(pager.wake)
        threads.append(_thread("pager", pager.run, stop))
        wakers.append(pager.wake)
    scheduler = start_sweep(runtime, owner, wakers)
    log.info("escbot running (policy %s)", policy.version)
    try:
        stop.wait()
    finally:
        log.info("escbot stopping")
        stop_front()
        stop_metrics()
        # Work acknowledged before the front stopped (a kill after its ack) is finished.
        app.listener_runner.listener_executor.shutdown(wait=True)
        scheduler.shutdown(wait=False)
        worker.wake()
        for thread in threads:
            thread.join(timeout=5)
        runtime.close()
    return 0


def _thread(
    name: str, target: Callable[[threading.Event], None], stop: threading.Event
) -> threading.Thread:
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread


def start_metrics(runtime: Runtime, policies: PolicyHolder) -> ServiceMetrics:
    """The service's events counted, and the gauges read from the store and Redis."""
    metrics = ServiceMetrics(label_limit=runtime.settings.metrics_label_limit)
    runtime.service.listeners.append(metrics)
    metrics.registry.register(
        StateGauges(runtime.store, runtime.redis, runtime.keys, lambda: policies.current)
    )
    return metrics


def _start_metrics_port(metrics: ServiceMetrics, host: str, port: int | None) -> Callable[[], None]:
    if port is None:
        return lambda: None
    try:
        bound, stop = serve_metrics(metrics.registry, host, port)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror})"
        ) from None
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return stop


def _start_front(
    app: App,
    settings: Settings,
    *,
    http: bool,
    host: str,
    port: int,
    runtime: Runtime,
    metrics: ServiceMetrics,
) -> Callable[[], None]:
    if http:
        from bot.slack.front import SlackFront
        from bot.slack.http import SlackHTTPServer

        assert settings.slack_signing_secret is not None  # check_slack_settings required it
        front = SlackFront(
            app, settings.slack_signing_secret.get_secret_value(), lambda: health(runtime)
        )
        front.routes[METRICS_PATH] = lambda: _metrics_answer(metrics)
        try:
            server = SlackHTTPServer(front, host, port)
        except OSError as exc:
            raise ConfigError(
                f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})"
            ) from None
        server.start()
        log.info("listening on http://%s:%d/slack/events", host, server.port)
        return server.stop
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.slack.outage import Outage

    assert settings.slack_app_token is not None
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    connected = threading.Event()
    socket = Outage("Slack (Socket Mode)")  # one line when it fails, one when it connects
    if not _connect_socket(handler, socket):  # Slack unreachable: keep trying, the rest runs on
        threading.Thread(
            target=_keep_connecting,
            args=(handler, connected, socket),
            name="socket-mode",
            daemon=True,
        ).start()

    def close() -> None:
        connected.set()  # stops the reconnecting thread, if any
        handler.close()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated

    return close


def _connect_socket(handler: SocketModeHandler, socket: Outage) -> bool:
    """True once connected; False while Slack cannot be reached; a refused app-level
    token stops start-up with one line, like a refused bot token."""
    from slack_sdk.errors import SlackApiError

    from bot.slack.client import refused
    from bot.slack.outage import describe

    try:
        handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
    except SlackApiError as exc:
        # access_denied: Socket Mode is off for the app, or the token lacks connections:write.
        error = refused(exc, "SLACK_APP_TOKEN", also=frozenset({"access_denied"}))
        socket.failed(f"Slack answered {error}")
        return False
    except Exception as exc:
        socket.failed(describe(exc))
        return False
    if socket.down:
        socket.reachable()
    else:
        log.info("connected to Slack in Socket Mode")
    return True


def _keep_connecting(handler: SocketModeHandler, stop: threading.Event, socket: Outage) -> None:
    delay = 1.0
    while not stop.wait(delay):
        try:
            if _connect_socket(handler, socket):
                return
        except ConfigError as exc:
            log.error("%s", exc.message)
            return
        delay = min(delay * 2, 30.0)


def _metrics_answer(metrics: ServiceMetrics) -> tuple[int, dict[str, Sequence[str]], str]:
    content_type, body = render(metrics.registry)
    return 200, {"content-type": [content_type]}, body


def health(runtime: Runtime) -> dict[str, str]:
    checks = {}
    for name, ping in (("database", runtime.store.ping), ("redis", runtime.control.ping)):
        try:
            ping()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {str(exc).splitlines()[0][:200]}"
    return checks
